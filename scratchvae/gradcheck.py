"""Gradient checking: analytic backward against central finite differences.

For a scalar loss L and any array a it depends on,

    dL/da[i] ~= (L(a + h e_i) - L(a - h e_i)) / (2 h)        (error O(h**2))

A module's output is not a scalar, so we check the scalar L = sum(out * R) with
a fixed random R: then dL/dout = R, and ``module.backward(R)`` must give dL/dx
and the parameter gradients. Everything runs in float64; float32's 7 digits
cannot resolve a 1e-6 relative error.

Choosing h: the truncation error shrinks like h**2, but the rounding error of
L(a+h) - L(a-h) grows like 1e-16 * |L| / h. A tiny layer's L is ~1, so h = 1e-6
balances them; a whole model's loss sums hundreds of pixels (|L| ~ 500 nats), which
wants h ~ 1e-4 (measured on the 784-400-4 VAE: max error 5e-6 at h=1e-6, 9e-7 at
1e-5, 1e-7 at 1e-4).

The error reported per array is a norm ratio, robust to entries that are ~0:

    rel_error = ||analytic - numeric|| / max(||analytic||, ||numeric||)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .nn.module import Module

DEFAULT_TOLERANCE = 1e-6


def numerical_gradient(loss_fn: Callable[[], float], a: np.ndarray, h: float = 1e-6,
                       indices: np.ndarray | None = None) -> np.ndarray:
    """Central differences of ``loss_fn()`` with respect to ``a``, perturbed in place.

    With ``indices`` (flat positions), only those entries are computed; the rest stay 0.
    """
    grad = np.zeros_like(a, dtype=np.float64)
    flat, gflat = a.reshape(-1), grad.reshape(-1)  # views: writing flat[i] moves a
    if not np.shares_memory(flat, a):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    for i in (range(flat.size) if indices is None else indices):
        old = flat[i]
        flat[i] = old + h
        plus = loss_fn()
        flat[i] = old - h
        minus = loss_fn()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||analytic - numeric|| / max(||analytic||, ||numeric||); 0 when both are 0."""
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


@dataclass
class GradCheckReport:
    """Relative error per checked array ("input", "weight", "encoder.0.bias", ...)."""

    errors: dict[str, float] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_error < self.tolerance

    def __str__(self) -> str:
        width = max((len(n) for n in self.errors), default=4)
        rows = [f"{'array':<{width}}  rel. error  {'ok' if self.ok else 'FAIL'}"]
        for name, err in self.errors.items():
            mark = "" if err < self.tolerance else "  <-- above tolerance"
            rows.append(f"{name:<{width}}  {err:.2e}{mark}")
        rows.append(f"max {self.max_error:.2e} (tolerance {self.tolerance:.0e})")
        return "\n".join(rows)


def gradcheck(loss_fn: Callable[[], float], wrt: dict[str, tuple[np.ndarray, np.ndarray]],
              h: float = 1e-6, tolerance: float = DEFAULT_TOLERANCE, max_entries: int | None = None,
              seed: int = 0) -> GradCheckReport:
    """Compare analytic gradients with finite differences.

    ``wrt`` maps a name to (array that loss_fn reads, its analytic gradient). Arrays
    with more than ``max_entries`` entries are checked on that many random entries
    (two loss evaluations each), so large models stay checkable.
    """
    report = GradCheckReport(tolerance=tolerance)
    rng = np.random.default_rng(seed)
    for name, (array, analytic) in wrt.items():
        idx = None
        if max_entries is not None and array.size > max_entries:
            idx = rng.choice(array.size, size=max_entries, replace=False)
        numeric = numerical_gradient(loss_fn, array, h, idx)
        if idx is not None:
            analytic, numeric = analytic.reshape(-1)[idx], numeric.reshape(-1)[idx]
        report.errors[name] = relative_error(analytic, numeric)
    return report


def check_module(module: Module, x: np.ndarray, seed: int = 0, h: float = 1e-6,
                 tolerance: float = DEFAULT_TOLERANCE, max_entries: int | None = None) -> GradCheckReport:
    """Check ``module.backward`` for the input and every parameter (module cast to float64)."""
    module.to(np.float64)
    x = np.array(x, dtype=np.float64)
    out = module.forward(x)
    r = np.random.default_rng(seed).standard_normal(out.shape)

    def loss() -> float:
        return float(np.sum(module.forward(x) * r))

    module.zero_grad()
    module.forward(x)
    dx = module.backward(r)
    wrt = {"input": (x, dx)}
    wrt.update({name: (p.data, p.grad.copy()) for name, p in module.named_parameters()})
    return gradcheck(loss, wrt, h, tolerance, max_entries, seed)


def check_loss(loss_obj, pred: np.ndarray, target: np.ndarray, h: float = 1e-6,
               tolerance: float = DEFAULT_TOLERANCE) -> GradCheckReport:
    """Check a loss object's ``backward()`` (d loss / d pred) after ``forward(pred, target)``."""
    pred = np.array(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    loss_obj.forward(pred, target)
    dpred = loss_obj.backward()
    return gradcheck(lambda: float(loss_obj.forward(pred, target)), {"pred": (pred, dpred)}, h, tolerance)


def check_model(model: Module, x: np.ndarray, eps: np.ndarray | None = None, h: float = 1e-6,
                tolerance: float = DEFAULT_TOLERANCE, max_entries: int | None = None) -> GradCheckReport:
    """Check a whole model's training loss (``model.loss`` then ``model.backward``).

    For a VAE, pass ``eps`` so the same noise is used at every evaluation: with it
    fixed, z = mu + exp(logvar/2) * eps is a deterministic function of x and the weights.
    """
    model.to(np.float64)
    x = np.array(x, dtype=np.float64)
    # The target is a frozen copy: perturbing x must move the encoder's input only.
    kwargs = {"target": x.copy()}
    if eps is not None:
        kwargs["eps"] = np.asarray(eps, dtype=np.float64)

    def loss() -> float:
        return float(model.loss(x, **kwargs).total)

    model.zero_grad()
    model.loss(x, **kwargs)
    dx = model.backward()
    wrt = {"input": (x, dx)}
    wrt.update({name: (p.data, p.grad.copy()) for name, p in model.named_parameters()})
    return gradcheck(loss, wrt, h, tolerance, max_entries)
