"""Data parallelism: each core runs the whole network on its own share of the batch.

A conv VAE step is a chain of dozens of GEMMs and im2col/col2im passes. Run on one batch,
each of them splits its work over the cores and waits for all of them at its end, and
most are too small for the second core to pay for that wait and for the caches the
two cores then share. Splitting the batch instead gives each core one uninterrupted
chain on its own images:

    shares:   x = [x_1; ...; x_K]                    n_k images each, n = sum of n_k
    worker k: replica_k.loss(x_k); replica_k.backward(dloss=n_k / n)
              -> (n_k / n) * grad_k, where grad_k is the mean over its n_k images
    reduce:   grad += sum over k of (n_k / n) * grad_k     (the mean over all n images)
              loss  = sum over k of (n_k / n) * loss_k
    update:   step(optimizer) updates each slice of a parameter on the worker that has
              just summed its gradient (an elementwise update needs nothing else; reduce.py)
    passes:   a worker runs x_k in passes of at most images_per_pass images, x_k = [x_k1; ...],
              each with backward(dloss=n_ki / n), so they add up to the same (n_k / n) * grad_k
              (fewer images at once keep a pass's arrays in cache; see PASS_BYTES)

A replica is a copy of the model whose Parameters hold the SAME weight arrays (so an
optimizer step on the model moves every replica) and have their own caches and
workspaces. Replica 0's .grad arrays are the model's too: worker 0 adds its share into
the model's gradients as it goes. The others have their own .grad, zero between calls;
the reduce adds them in (each worker one slice of every parameter) and zeroes them
while they are still in cache. Seeding backward with dloss = n_k / n, instead of
rescaling each gradient afterwards, spares every worker a pass over all of them
(measured 1.7 ms per worker for the reference conv VAE's 6.7 MB). The reduce gives the
full batch's gradient, up to rounding, because every layer treats images independently;
BatchNorm does not (its statistics would be per share), so models with a layer that
couples the batch (Module.couples_batch) run on one worker. Inside a worker BLAS runs on
one thread and the Numba kernels run serially: the cores are already split by the batch.
The workers are threads of one process, so only one of them runs Python at a time;
what runs at once is the arithmetic, which must let go of the GIL: the Numba kernels
are nogil, and products with a small output use np.dot (kernels/blas.py matmul_nogil).

A VAE's replicas draw their own eps (each gets a generator seeded from the model's), so
a seeded run is reproducible for a given number of workers, not across numbers (passes
draw in sequence from the worker's generator, so they do not change the draws). Settings
other than the weights (beta, the loss) are copied when the DataParallel is built.
"""
from __future__ import annotations

import collections
import copy
import os
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ._threads import blas_thread_control, blas_threads
from .nn.module import Module, Parameter, batch_coupling
from .objective import Losses
from .optim import Optimizer
from .reduce import sum_shares, updates_in_parts


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers set), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


MAX_DEFAULT_WORKERS = 8  # each worker keeps its own buffers; measured on 2 cores only


def default_workers(model: Module) -> int:
    """One worker per core (at most MAX_DEFAULT_WORKERS) for a model with a layer that gains from
    workers (its class says so: gains_from_workers, the conv layers), else 1.

    On 2 cores two workers made the conv VAEs' steps faster and the MLP's slower, as its
    three large GEMMs already keep both cores busy and the Python between them runs one
    at a time (the figures: docs/performance.md, "Thread pools").
    """
    if workers_refusal(model) is not None:
        return 1
    if not any(m.gains_from_workers for m in model.modules()):
        return 1
    return min(cpu_cores(), MAX_DEFAULT_WORKERS)


# A worker runs its share in passes of at most PASS_BYTES // (bytes of one image's layer
# outputs) images, the gradients of the passes added up. A pass's arrays (layer outputs,
# their gradients, column matrices) then fit the cache, which on the 2-core VM this was
# measured on holds ~50 MB for both workers: passes over larger arrays ran at half the
# speed. Each extra pass costs one more set of dweight products (each added into the
# gradients: no pass over them; see the module docstring).
# 16 MB gives the keras-io model passes of 32 (training) and ~38 (inference), and the
# reference model one pass of 64 (training) and ~90 (inference); the measurements behind it
# are in docs/performance.md ("Passes that fit the cache").
PASS_BYTES = 16 << 20


def inference_workers(model: Module) -> int:
    """One worker per core (at most MAX_DEFAULT_WORKERS) for inference in many independent chunks
    (the importance-sampled nll), unless the model cannot be split (workers_refusal). Unlike its
    training step, the MLP gains here: the chunks' elementwise passes run on every core."""
    return 1 if workers_refusal(model) is not None else min(cpu_cores(), MAX_DEFAULT_WORKERS)


def layer_output_bytes(model: Module, x1: np.ndarray) -> int:
    """Bytes of every layer output of the encoder and decoder for one image x1 (1, C, H, W); an
    objective that decodes K samples of each image (the importance-weighted bound) counts the
    decoder's K times."""
    z = np.zeros((1, model.latent_dim), x1.dtype)                # (1, L)
    rows = getattr(getattr(model, "objective", None), "decoder_rows_per_image", 1)
    return sum(out.nbytes * (rows if name.startswith("decoder") else 1) for name, *_, out in model.trace(x1, z))


def workers_refusal(model: Module) -> str | None:
    """Why this model cannot run on several workers, or None if it can."""
    if (coupled := batch_coupling(model)) is not None:
        return f"it has {coupled}, whose batch statistics would become per-share statistics"
    if blas_thread_control() is None:
        return "the BLAS NumPy uses is not OpenBLAS, so its threads cannot be set to one per worker"
    return None


def _rows(a: np.ndarray | None, part: slice) -> np.ndarray | None:
    return None if a is None else a[part]


class DataParallel:
    """The model's training interface (zero_grad, loss, backward, step) with the batch split
    over ``workers`` threads, one share each, in passes of at most images_per_pass images
    (None: PASS_BYTES decides); with workers=1, the model's own calls.

        dp = DataParallel(model)                  # workers: default_workers(model)
        dp.zero_grad()
        losses = dp.loss(x)                       # model.loss(x)
        dp.backward(input_grad=False)             # model.backward(input_grad=False)
        dp.step(optimizer)                        # optimizer.step(); it holds model.parameters()

    With several workers, loss() in training mode runs each worker's backward right after its
    forward, pass by pass (the next pass overwrites the caches): worker 0 adds its share into
    the model's .grad, the others' wait in their replicas for step() to sum them, making the
    optimizer's update inside the sum (or for parameters(), when clipping must read the whole
    gradient first). In eval mode loss() runs the forward only.
    """

    def __init__(self, model: Module, workers: int | None = None, images_per_pass: int | None = None) -> None:
        if workers is None:
            workers = default_workers(model)
        for name, value in (("workers", workers), ("images_per_pass", images_per_pass)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"DataParallel: {name} must be a positive int, got {value!r}")
        if workers > 1 and (why := workers_refusal(model)) is not None:
            raise ValueError(f"DataParallel: cannot use {workers} workers for this model: {why}")
        self.model, self.workers = model, int(workers)
        self.images_per_pass = images_per_pass   # None: from PASS_BYTES; unused with one worker (no replica)
        self._output_bytes: dict[tuple, int] = {}  # (image shape, dtype) -> layer outputs of one image
        self.replicas = [self._replica() for _ in range(self.workers)] if self.workers > 1 else []
        # model.parameters() walks the module tree; the lists are fixed, so walk it once
        self._model_params = model.parameters()
        self._replica_params = [r.parameters() for r in self.replicas]  # same order as _model_params
        self._pool = ThreadPoolExecutor(self.workers, "scratchvae-worker") if self.workers > 1 else None
        self._unsummed = 0  # images of the loss() calls whose workers' shares still wait in replicas 1..

    def _replica(self) -> Module:
        shared = {id(p.data): p.data for p in self.model.parameters()}  # deepcopy keeps these, copies the rest
        replica = copy.deepcopy(self.model, shared)
        for m in replica.modules():
            if hasattr(m, "workspace"):
                m.workspace.clear()      # the model's scratch arrays: a replica fills its own
            if hasattr(m, "cache"):
                m.cache = None
        if getattr(self.model, "rng", None) is not None:
            replica.rng = np.random.default_rng(self.model.rng.integers(2**63))  # its own eps draws
        replica.zero_grad()              # deepcopy copied the model's; replicas start at zero
        return replica

    def _sync(self) -> None:
        """Point every replica at the model's current weight arrays, dtype and mode (cheap);
        replica 0 at the model's gradient arrays too."""
        for k, params in enumerate(self._replica_params):
            for p, rp in zip(self._model_params, params):
                rp.data = p.data
                if k == 0:
                    rp.grad = p.grad                     # worker 0 adds into the model's gradients
                elif rp.grad.shape != p.data.shape or rp.grad.dtype != p.data.dtype:
                    rp.grad = np.zeros_like(p.data)
        for replica in self.replicas:
            replica.train(self.model.training)

    def _images_per_pass(self, x: np.ndarray) -> int:
        """How many images a worker runs through the network at once (see PASS_BYTES)."""
        if self.images_per_pass is not None:
            return self.images_per_pass
        key = (x.shape[1:], x.dtype)
        if key not in self._output_bytes:
            self._output_bytes[key] = layer_output_bytes(self.replicas[0], x[:1])
        return max(1, PASS_BYTES // self._output_bytes[key])

    def plan(self, x: np.ndarray) -> list[tuple[int, list[slice]]]:
        """How a batch x is cut: (worker k, the passes its share runs), in batch order. The
        shares are near-equal (workers beyond the batch size get none), and so are the passes
        of a share, each of at most _images_per_pass images. One worker: the whole batch at once,
        as the model runs it."""
        if self.workers == 1:
            return [(0, [slice(0, x.shape[0])])]
        n, per_pass = x.shape[0], self._images_per_pass(x)
        bounds = np.linspace(0, n, self.workers + 1).astype(int)
        shares = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]  # drops empty ones (n < workers)
        jobs = []
        for k, (a, b) in enumerate(shares):
            cuts = np.linspace(a, b, -(-(b - a) // per_pass) + 1).astype(int)  # near-equal passes
            jobs.append((k, [slice(c, d) for c, d in zip(cuts[:-1], cuts[1:])]))
        return jobs

    def run(self, x: np.ndarray, work: Callable[[int, list[slice]], list]) -> list:
        """work(k, passes) on worker k (replica k), for every (k, passes) of plan(x), each worker's
        BLAS on one thread; returns the workers' result lists joined, in batch order."""
        self._sync()
        with blas_threads(1):
            futures = [self._pool.submit(work, *job) for job in self.plan(x)]
            wait(futures)                     # all of them, even after one fails: then none still writes
        return [item for future in futures for item in future.result()]  # raises a worker's error

    def imap(self, fn: Callable[[Module, Any], Any], jobs: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """(job, fn(replica, job)) for every job, in job order, fn on the workers (one replica and one
        BLAS thread each; at most one job per worker in flight: job i on replica i % workers). jobs
        is consumed here, in order, so draws made while producing them do not depend on the
        workers. One worker: fn(model, job) on this thread."""
        if self.workers == 1:
            yield from ((job, fn(self.model, job)) for job in jobs)
            return
        self._sync()
        pending: collections.deque = collections.deque()
        with blas_threads(1):
            for i, job in enumerate(jobs):
                if len(pending) == self.workers:
                    done_job, future = pending.popleft()
                    yield done_job, future.result()
                pending.append((job, self._pool.submit(fn, self.replicas[i % self.workers], job)))
            while pending:
                done_job, future = pending.popleft()
                yield done_job, future.result()

    @staticmethod
    def _weighted(parts: list[tuple[float, Losses]]) -> Losses:
        return Losses.weighted(parts)

    # -- the model's training interface: zero_grad, loss, backward, (parameters), step -------------

    def zero_grad(self) -> None:
        """model.zero_grad(), and the workers' shares of a step that stopped before its sum (a NaN loss)."""
        self.model.zero_grad()
        if self._unsummed:
            for params in self._share_params():
                for p in params:
                    p.zero_grad()
            self._unsummed = 0

    def loss(self, x: np.ndarray, target: np.ndarray | None = None, eps: np.ndarray | None = None) -> Losses:
        """model.loss(x, target, eps), the batch split over the workers; in training mode, with
        several workers, each worker's backward too: its share of the gradient ADDS into .grad
        (worker 0's) or waits in its replica for step() or parameters() to sum it."""
        if self.workers == 1:
            return self.model.loss(x, target, eps)
        n, training = x.shape[0], self.model.training

        def work(k: int, passes: list[slice]) -> list[tuple[float, Losses]]:
            replica, parts = self.replicas[k], []
            for part in passes:
                weight = (part.stop - part.start) / n              # n_i / n
                parts.append((weight, replica.loss(x[part], _rows(target, part), _rows(eps, part))))
                if training:
                    replica.backward(input_grad=False, dloss=weight)  # adds (n_i / n) * grad_i, grad_i the pass mean
            return parts

        try:
            parts = self.run(x, work)
        except BaseException:
            for replica in self.replicas[1:]:
                replica.zero_grad()       # a failed step must not leak into the next one
            self._unsummed = 0
            raise
        self._unsummed = max(self._unsummed, n if training else 0)
        return self._weighted(parts)

    def backward(self, input_grad: bool = False) -> np.ndarray | None:
        """model.backward(input_grad) after loss(). With several workers loss() has run their
        backward already: their shares wait for step() (or parameters()) to sum them, and
        the data's gradient is not made (input_grad must be False)."""
        if self.workers == 1:
            return self.model.backward(input_grad=input_grad)
        if input_grad:
            raise ValueError("DataParallel.backward: input_grad=True needs one worker")
        if not self._unsummed:
            raise RuntimeError("DataParallel.backward: call loss(x) in training mode first")

    def parameters(self) -> list[Parameter]:
        """model.parameters() with the whole gradient in each .grad: the workers' shares still
        waiting are summed first (without any update)."""
        self._sum_shares()
        return list(self._model_params)

    def step(self, optimizer: Optimizer, check: Callable[[], None] = lambda: None) -> None:
        """optimizer.step() on the whole gradient, check() (which may raise) just before it. With
        the workers' shares still to sum and an optimizer that can update in parts, the update
        is made inside the sum instead, each slice as soon as its sum is final (reduce.py);
        check() then runs after it: it can stop a run before a checkpoint holds the step."""
        if self._unsummed and updates_in_parts(optimizer, self._model_params):
            optimizer.begin_step()
            self._sum_shares(optimizer)
            check()
        else:
            self._sum_shares()
            check()
            optimizer.step()

    def _share_params(self) -> list[list[Parameter]]:
        return self._replica_params[1:min(self._unsummed, self.workers)]  # replica 0 added into the model's

    def _sum_shares(self, optimizer: Optimizer | None = None) -> None:
        if self._unsummed:
            sum_shares(self._pool, self.workers, self._model_params, self._share_params(), optimizer)
            self._unsummed = 0

    def loss_and_backward(self, x: np.ndarray, target: np.ndarray | None = None,
                          eps: np.ndarray | None = None) -> Losses:
        """loss(), backward() and the sum: the whole gradient ADDS into the model's .grad, as
        model.backward() does (if a worker raises, .grad may hold part of it)."""
        losses = self.loss(x, target, eps)
        self.backward(input_grad=False)
        self._sum_shares()
        return losses

    def train_step(self, x: np.ndarray, optimizer: Optimizer, target: np.ndarray | None = None,
                   eps: np.ndarray | None = None) -> Losses:
        """train._step's lines without its checks: zero_grad(), loss(), backward(), step(optimizer);
        a NaN or infinite loss skips backward and step (the weights stay as they were). Returns the losses."""
        self.zero_grad()
        losses = self.loss(x, target, eps)
        if losses.finite():
            self.backward(input_grad=False)
            self.step(optimizer)
        return losses

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """model.reconstruct(x) (encode, decode the mean), the batch split over the workers."""
        if self.workers == 1:
            return self.model.reconstruct(x)
        outs = self.run(x, lambda k, passes: [self.replicas[k].reconstruct(x[part]) for part in passes])
        return np.concatenate(outs)                                 # (N, C, H, W)

    def __repr__(self) -> str:
        return f"DataParallel(workers={self.workers}, model={type(self.model).__name__})"
