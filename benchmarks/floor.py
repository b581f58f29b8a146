"""The floor NumPy's BLAS sets under a step: its matrix products, run alone.

A conv VAE's training step is its matrix products (BLAS's work) and everything around
them: im2col and col2im, bias and activation passes, the loss, the gradient reduce and
Adam. ProductsAlone runs exactly the products of one step (gemms.step_gemms: each
layer's forward, dweight and dx, in the shapes and memory layouts the layers use), on
random operands made once, split over the workers as the step splits its batch (the
same shares and passes of DataParallel.plan, BLAS on one thread in each worker), and
nothing else. The time it takes is the least a step computed this way can take with
this BLAS. bench prints it twice: as the step's time over it (what everything around the
products costs), and over PyTorch's step (the lowest ratio to PyTorch this BLAS
leaves room for, whatever the rest cost).

The operands live as long as the ProductsAlone, so timing it frees no large block
that would change malloc's thresholds for the library timed next (see fresh.py).
"""
from __future__ import annotations

import numpy as np

from scratchvae.nn.module import Module
from scratchvae.parallel import DataParallel

from gemms import Gemm, step_gemms


class ProductsAlone:
    """Call it to run the matrix products of one step of ``model`` on the batch x, as
    ``parallel`` runs that step; training=False: those of inference (encode + decode).

        floor = ProductsAlone(model, x, DataParallel(model))
        floor()                           # every product once; floor.flops of them
    """

    def __init__(self, model: Module, x: np.ndarray, parallel: DataParallel, training: bool = True) -> None:
        self.x, self.parallel = x, parallel
        self.jobs = parallel.plan(x)                                 # [(worker k, its passes)]
        self.gemms: dict[tuple[int, int], list[Gemm]] = {}           # (k, images in a pass) -> its products
        self._operands: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        rng = np.random.default_rng(0)
        for k, passes in self.jobs:
            for part in passes:
                key = (k, part.stop - part.start)
                if key not in self.gemms:                            # each worker its own operands
                    replica = parallel.replicas[k] if parallel.replicas else model  # fills buffers it will use anyway
                    self.gemms[key] = step_gemms(replica, x[part], training)
                    self._operands[key] = [(*g.operands(rng), np.empty((g.m, g.n), np.float32))  # out: (m, n)
                                           for g in self.gemms[key]]

    @property
    def flops(self) -> int:
        """The FLOPs one call computes: those of the whole batch's step."""
        return sum(g.flops for k, passes in self.jobs for part in passes
                   for g in self.gemms[k, part.stop - part.start])

    def _passes(self, k: int, passes: list[slice]) -> list:
        for part in passes:
            for a, b, out in self._operands[k, part.stop - part.start]:
                np.dot(a, b, out=out)                                # (m, k) @ (k, n) -> (m, n)
        return []

    def __call__(self) -> None:
        if self.parallel.workers == 1:
            self._passes(*self.jobs[0])                              # this thread, BLAS's own threads
        else:
            self.parallel.run(self.x, self._passes)
