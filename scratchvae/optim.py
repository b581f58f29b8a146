"""Optimizers (Adam, SGD with momentum) and global-norm gradient clipping.

An optimizer takes the parameter list (``model.parameters()``) and reads each
``Parameter.grad``; it never zeroes them (call ``model.zero_grad()``), so
gradients from several backward calls can be accumulated before a step.
Updates are written in place into ``p.data``, matching torch.optim exactly.

A step is ``begin_step()`` (once: Adam counts its steps) and then ``update(i)`` for
every parameter i. The update is elementwise, so it can also be made in parts:
``update(i, k, parts)`` updates only the k-th of ``parts`` runs of parameter i's
elements (``flat_part``). DataParallel.step uses that to update each slice of a
parameter on the worker that has just summed its gradient, while it is in that core's
cache (reduce.py).
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from .kernels import KERNELS, adam_update
from .nn.module import Parameter


def flat_part(a: np.ndarray, k: int, parts: int) -> np.ndarray:
    """The k-th of ``parts`` near-equal runs of a's elements, as a 1-D view of a (a is C-contiguous)."""
    if not a.flags.c_contiguous:
        raise ValueError("flat_part: parameters and gradients must be C-contiguous arrays")  # else reshape copies
    flat = a.reshape(-1)
    return flat[k * flat.size // parts:(k + 1) * flat.size // parts]


class Optimizer:
    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr

    def step(self) -> None:
        """Update every parameter from its .grad."""
        self.begin_step()
        for i in range(len(self.params)):
            self.update(i)

    def begin_step(self) -> None:
        """Once per step, before any update (checks, step counts)."""

    def update(self, i: int, k: int = 0, parts: int = 1) -> None:
        """Update the k-th of ``parts`` runs of parameter i's elements (all of it by default);
        begin_step() must have run once for this step."""
        raise NotImplementedError

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def _check_state_dtype(self, state: list[np.ndarray], what: str) -> None:
        for p, s in zip(self.params, state):
            if s.dtype != p.data.dtype:
                raise TypeError(f"{type(self).__name__}: a parameter is now {p.data.dtype} but its {what} "
                                f"are {s.dtype}; build the optimizer after model.to(dtype)")


class SGD(Optimizer):
    """Stochastic gradient descent with (optional) momentum, torch.optim.SGD's form:

        g = grad + weight_decay * p
        v = momentum * v + g          (v = g at the first step)
        p = p - lr * v
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-2, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        # v starts at 0, so the first step's v = momentum * 0 + g = g, as torch's
        self.velocity = [np.zeros_like(p.data) for p in self.params] if momentum else []

    def begin_step(self) -> None:
        self._check_state_dtype(self.velocity, "velocities")

    def update(self, i: int, k: int = 0, parts: int = 1) -> None:
        p = flat_part(self.params[i].data, k, parts)
        g = flat_part(self.params[i].grad, k, parts)
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = flat_part(self.velocity[i], k, parts)
            v *= self.momentum
            v += g
            g = v
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, torch.optim.Adam's update; at step t = 1, 2, ...

        g = grad + weight_decay * p                  (L2 penalty, as torch's Adam, not AdamW)   [ADAM-1]
        m = beta1 * m + (1 - beta1) * g                                                        [ADAM-2]
        v = beta2 * v + (1 - beta2) * g * g                                                    [ADAM-2]
        m_hat = m / (1 - beta1**t)                                                             [ADAM-3]
        v_hat = v / (1 - beta2**t)                                                             [ADAM-3]
        p = p - lr * m_hat / (sqrt(v_hat) + eps)                                               [ADAM-3]

    With fused=False, update() runs these lines as written (the default when
    SCRATCHVAE_KERNELS=reference). With fused=True (the default otherwise) the kernel
    kernels/fused.py adam_update makes the same update in one pass over memory, the bias
    corrections folded into two scalars: p = p - step_size * m / (sqrt(v) * v_scale + eps),
    step_size = lr / (1 - beta1**t),  v_scale = 1 / sqrt(1 - beta2**t)   [ADAM-4]
    (derivation: docs/derivations/adam.md)
    """

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, fused: bool | None = None) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.fused = KERNELS == "numba" if fused is None else fused
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def begin_step(self) -> None:
        self._check_state_dtype(self.m, "moments")
        self.t += 1

    def update(self, i: int, k: int = 0, parts: int = 1) -> None:
        """Step t of parameter i (of the k-th of ``parts`` runs of its elements), as the class docstring reads."""
        p, m, v = (flat_part(a, k, parts) for a in (self.params[i].data, self.m[i], self.v[i]))
        g = flat_part(self.params[i].grad, k, parts)
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.fused:
            adam_update(p, g, m, v, self.lr, self.beta1, self.beta2, self.eps, self.t)  # the lines below, one pass
            return
        # p, m and v are views of the weights and the optimizer's state: written in place
        m[...] = self.beta1 * m + (1 - self.beta1) * g
        v[...] = self.beta2 * v + (1 - self.beta2) * g * g
        m_hat = m / (1 - self.beta1 ** self.t)
        v_hat = v / (1 - self.beta2 ** self.t)
        p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Moments by parameter index, and the step count (for checkpoints)."""
        state = {"t": np.array(self.t)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            state[f"m.{i}"], state[f"v.{i}"] = m.copy(), v.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            m[...], v[...] = state[f"m.{i}"], state[f"v.{i}"]


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping (as torch.nn.utils.clip_grad_norm_ does).
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    params = list(params)
    total = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in params))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for p in params:
            p.grad *= scale
    return total
