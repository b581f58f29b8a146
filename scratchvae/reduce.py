"""The reduce of a data-parallel step: the workers' gradient shares summed into the model's.

After each worker's backward (parallel.py), worker 0's share is already in the model's
Parameter.grad (its replica shares those arrays) and worker k's waits in replica k's:

    sum:     p.grad += sum over k >= 1 of replica_k's grad       (then zeroed for the next step)
    update:  optimizer.update(i, k, parts) on each slice as soon as its sum is final

Worker k sums the k-th slice (optim.flat_part) of every parameter. Given an optimizer,
it then updates that slice of the parameter at once, while the gradient is still in its
core's cache, instead of one core making a pass over every parameter afterwards: an
elementwise update needs nothing else. This is DataParallel.step's fast path; the
weights come out as optimizer.step() makes them (tests/test_train_step.py).

On the main thread alone the adds (the reference conv VAE's 6.7 MB of gradients, read
once per replica) took 1.05 ms while the workers' cores sat idle; split over the two
workers, 0.78 ms (medians of 100, memory-bound). The zeroing writes a slice the add has
just read, still in cache; a separate zero_grad on each worker cost 0.6 ms of its time.
The fused step took 0.93-1.05x the time of the sum followed by optimizer.step(), median
0.97x (10 rounds; docs/performance.md).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .nn.module import Parameter
from .optim import Optimizer, flat_part

# Parameters smaller than this (elements) are updated whole on the main thread after the
# reduce. An update call costs ~15 us of Python, which holds the GIL, so splitting a small
# parameter over the workers adds calls and saves no time (docs/performance.md, "Passes
# that fit the cache"). The split is for large weights, such as the reference model's two
# 0.8M-element Linear weights.
UPDATE_IN_PARTS_MIN = 1 << 16


def updates_in_parts(optimizer: Optimizer, model_params: list[Parameter]) -> bool:
    """Whether optimizer can make its step inside the reduce: it has update(i, k, parts), and
    every parameter it holds is the model's (another's gradient would not be summed)."""
    ids = {id(p) for p in model_params}
    return type(optimizer).update is not Optimizer.update and all(id(p) in ids for p in optimizer.params)


def sum_shares(pool: ThreadPoolExecutor, workers: int, model_params: list[Parameter],
               share_params: list[list[Parameter]], optimizer: Optimizer | None = None) -> None:
    """p.grad += the grad of every replica in share_params (each a list ordered as model_params),
    zeroing them for the next step; worker k of ``workers`` does the k-th slice of every parameter.
    Given an optimizer (its begin_step() done), each slice of a parameter is updated as soon as
    its sum is final; parameters under UPDATE_IN_PARTS_MIN elements whole, on this thread, after."""
    updated_in_reduce, updated_after = {}, []     # large: optimizer index by id; small: indices
    for i, p in enumerate(optimizer.params if optimizer is not None else []):
        if p.data.size >= UPDATE_IN_PARTS_MIN:
            updated_in_reduce[id(p)] = i
        else:
            updated_after.append(i)

    def add(k: int) -> None:
        for i, p in enumerate(model_params):
            target = flat_part(p.grad, k, workers)
            for params in share_params:
                source = flat_part(params[i].grad, k, workers)
                target += source
                source[...] = 0.0
            if id(p) in updated_in_reduce:
                optimizer.update(updated_in_reduce[id(p)], k, workers)  # this slice's gradient is final
    if share_params or updated_in_reduce:
        list(pool.map(add, range(workers)))
    for i in updated_after:
        optimizer.update(i)
