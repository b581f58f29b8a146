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

Kinks: ReLU is not differentiable at 0. When moving one entry by +-h carries some unit's
input across 0, the difference quotient mixes two slopes and disagrees with any correct
gradient. A whole conv model has tens of thousands of ReLU units, and a bias moves all
the units of its channel, so some of them straddle 0 at almost any h. With ``pattern``
(a function returning the on/off pattern of every ReLU, see activation_pattern), an entry
whose +h or -h evaluation changes the pattern is tried again at h/4, h/16 and h/64, and if
those straddle a kink too, skipped and counted, and another entry drawn in its place: the check then compares slopes within one linear piece, where
finite differences are exact up to rounding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .nn.module import Module
from .distributions import GaussianKL

DEFAULT_TOLERANCE = 1e-6
MAX_DRAWS_PER_ENTRY = 10  # with a kink pattern: give up on an array after 10 draws per wanted entry


def numerical_gradient(loss_fn: Callable[[], float], a: np.ndarray, h: float = 1e-6,
                       indices: np.ndarray | None = None) -> np.ndarray:
    """Central differences of ``loss_fn()`` with respect to ``a``, perturbed in place.

    With ``indices`` (flat positions), only those entries are computed; the rest stay 0.
    """
    grad = np.zeros_like(a, dtype=np.float64)
    gflat = grad.reshape(-1)
    for i in (range(a.size) if indices is None else indices):
        gflat[i] = _difference_quotient(loss_fn, _flat_view(a), i, h)
    return grad


def _flat_view(a: np.ndarray) -> np.ndarray:
    flat = a.reshape(-1)  # a view: writing flat[i] moves a
    if not np.shares_memory(flat, a):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    return flat


def _difference_quotient(loss_fn: Callable[[], float], flat: np.ndarray, i: int, h: float,
                         pattern: Callable[[], bytes] | None = None, base: bytes | None = None) -> float | None:
    """(L(a + h e_i) - L(a - h e_i)) / (2 h), or None when either side changes the kink pattern."""
    old = flat[i]
    flat[i] = old + h
    plus = loss_fn()
    smooth = pattern is None or pattern() == base
    flat[i] = old - h
    minus = loss_fn()
    smooth = smooth and (pattern is None or pattern() == base)
    flat[i] = old
    return (plus - minus) / (2 * h) if smooth else None


def _smooth_difference_quotient(loss_fn: Callable[[], float], flat: np.ndarray, i: int, h: float,
                                pattern: Callable[[], bytes] | None, base: bytes | None) -> float | None:
    """The difference quotient at the first of h, h / 4, h / 16, h / 64 whose +-step stays off
    every kink; None if none does. A smaller step straddles fewer kinks, at more rounding
    (which matters only against small entries: a latent's bias, which moves every decoder
    unit, has large ones)."""
    for step in [h / 4 ** k for k in range(4)] if pattern is not None else [h]:
        q = _difference_quotient(loss_fn, flat, i, step, pattern, base)
        if q is not None:
            return q
    return None


def activation_pattern(module: Module) -> Callable[[], bytes]:
    """A function giving which units of every layer with a kink (ReLU, LeakyReLU: those whose
    units_on() is not None) in ``module`` were on in its last forward pass."""
    layers = list(module.modules())

    def pattern() -> bytes:
        return b"".join(np.packbits(on).tobytes() for m in layers if (on := m.units_on()) is not None)
    return pattern


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||analytic - numeric|| / max(||analytic||, ||numeric||); 0 when both are 0."""
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric))
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


@dataclass
class GradCheckReport:
    """Relative error per checked array ("input", "weight", "encoder.0.bias", ...), and per
    array how many entries were checked and how many were skipped at a kink.

    Also per array, for a table of what was compared (see ``rows``): its shape, and over the
    checked entries only, the norms of the analytic and the numeric gradient and the largest
    |analytic - numeric|."""

    errors: dict[str, float] = field(default_factory=dict)
    tolerance: float = DEFAULT_TOLERANCE
    checked: dict[str, int] = field(default_factory=dict)
    kinks: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    analytic_norm: dict[str, float] = field(default_factory=dict)
    numeric_norm: dict[str, float] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        """Every array within tolerance, and none left unchecked (all its draws at kinks)."""
        return self.max_error < self.tolerance and all(self.checked.get(n, 1) > 0 for n in self.errors)

    def passed(self, name: str) -> bool:
        """This array within tolerance, with at least one entry checked."""
        return self.errors[name] < self.tolerance and self.checked.get(name, 1) > 0

    def rows(self) -> list[dict]:
        """One dict per array: name, shape, size, checked, kinks, analytic_norm, numeric_norm,
        max_abs_diff, rel_error, ok (norms and difference over the checked entries)."""
        out = []
        for name, err in self.errors.items():
            shape = self.shapes.get(name)
            out.append({"name": name, "shape": None if shape is None else list(shape),
                        "size": None if shape is None else int(np.prod(shape, dtype=np.int64)),
                        "checked": self.checked.get(name), "kinks": self.kinks.get(name, 0),
                        "analytic_norm": self.analytic_norm.get(name), "numeric_norm": self.numeric_norm.get(name),
                        "max_abs_diff": self.max_abs_diff.get(name), "rel_error": err, "ok": self.passed(name)})
        return out

    def __str__(self) -> str:
        width = max((len(n) for n in self.errors), default=4)
        rows = [f"{'array':<{width}}  rel. error  checked  kinks  {'ok' if self.ok else 'FAIL'}"]
        for name, err in self.errors.items():
            mark = "" if err < self.tolerance else "  <-- above tolerance"
            rows.append(f"{name:<{width}}  {err:.2e}    {self.checked.get(name, 0):7d}  "
                        f"{self.kinks.get(name, 0):5d}{mark}")
        rows.append(f"max {self.max_error:.2e} (tolerance {self.tolerance:.0e})")
        return "\n".join(rows)


def gradcheck(loss_fn: Callable[[], float], wrt: dict[str, tuple[np.ndarray, np.ndarray]],
              h: float = 1e-6, tolerance: float = DEFAULT_TOLERANCE, max_entries: int | None = None,
              seed: int = 0, pattern: Callable[[], bytes] | None = None) -> GradCheckReport:
    """Compare analytic gradients with finite differences.

    ``wrt`` maps a name to (array that loss_fn reads, its analytic gradient). Arrays
    with more than ``max_entries`` entries are checked on that many random entries
    (two loss evaluations each), so large models stay checkable. With ``pattern``, entries
    at a ReLU kink are skipped (see the module docstring) and others drawn instead.
    """
    report = GradCheckReport(tolerance=tolerance)
    rng = np.random.default_rng(seed)
    base = None
    if pattern is not None:
        loss_fn()
        base = pattern()
    for name, (array, analytic) in wrt.items():
        flat, wanted = _flat_view(array), array.size if max_entries is None else min(max_entries, array.size)
        order = rng.permutation(array.size) if wanted < array.size else np.arange(array.size)
        idx, numeric, kinks = [], [], 0
        for tried, i in enumerate(order):
            if len(idx) == wanted or tried == MAX_DRAWS_PER_ENTRY * wanted:
                break
            q = _smooth_difference_quotient(loss_fn, flat, int(i), h, pattern, base)
            if q is None:
                kinks += 1
            else:
                idx.append(int(i))
                numeric.append(q)
        a, q = analytic.reshape(-1)[idx].astype(np.float64), np.array(numeric, dtype=np.float64)
        report.errors[name] = relative_error(a, q)
        report.checked[name], report.kinks[name] = len(idx), kinks
        report.shapes[name] = tuple(array.shape)
        report.analytic_norm[name], report.numeric_norm[name] = float(np.linalg.norm(a)), float(np.linalg.norm(q))
        report.max_abs_diff[name] = float(np.abs(a - q).max()) if len(idx) else 0.0
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
    return gradcheck(loss, wrt, h, tolerance, max_entries, seed, activation_pattern(module))


def check_loss(loss_obj, pred: np.ndarray, target: np.ndarray, h: float = 1e-6,
               tolerance: float = DEFAULT_TOLERANCE) -> GradCheckReport:
    """Check a loss object's ``backward()`` (d loss / d pred) after ``forward(pred, target)``."""
    pred = np.array(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    loss_obj.forward(pred, target)
    dpred = loss_obj.backward()
    return gradcheck(lambda: float(loss_obj.forward(pred, target)), {"pred": (pred, dpred)}, h, tolerance)


def check_kl(mu: np.ndarray, logvar: np.ndarray, h: float = 1e-6,
             tolerance: float = DEFAULT_TOLERANCE) -> GradCheckReport:
    """Check GaussianKL's ``backward()`` (d kl / d mu, d kl / d logvar) after ``forward(mu, logvar)``."""
    mu, logvar = np.array(mu, dtype=np.float64), np.array(logvar, dtype=np.float64)
    kl = GaussianKL()
    kl.forward(mu, logvar)
    dmu, dlogvar = kl.backward()
    return gradcheck(lambda: float(kl.forward(mu, logvar)), {"mu": (mu, dmu), "logvar": (logvar, dlogvar)},
                     h, tolerance)


def check_model(model: Module, x: np.ndarray, eps: np.ndarray | None = None, h: float = 1e-6,
                tolerance: float = DEFAULT_TOLERANCE, max_entries: int | None = None,
                seed: int = 0, objective=None) -> GradCheckReport:
    """Check a whole model's training loss (``model.loss`` then ``model.backward``).

    For a VAE, pass ``eps`` so the same noise is used at every evaluation: with it
    fixed, z = mu + exp(logvar/2) * eps is a deterministic function of x and the weights.
    ``seed`` picks the entries sampled when an array has more than ``max_entries``.
    ``objective`` (an ELBO or IWAE object): differentiate its forward numerically instead of the
    model's own loss, so that model.backward() is checked against what the loss should be, not
    against what the model computes (the zoo: a wrong objective's gradient against the true bound).
    """
    model.to(np.float64)
    x = np.array(x, dtype=np.float64)
    # The target is a frozen copy: perturbing x must move the encoder's input only.
    kwargs = {"target": x.copy()}
    if eps is not None:
        kwargs["eps"] = np.asarray(eps, dtype=np.float64)

    def loss() -> float:
        if objective is None:
            return float(model.loss(x, **kwargs).total)
        return float(objective.forward(model, x, kwargs["target"], kwargs.get("eps")).total)

    model.zero_grad()
    model.loss(x, **kwargs)
    dx = model.backward()
    wrt = {"input": (x, dx)}
    wrt.update({name: (p.data, p.grad.copy()) for name, p in model.named_parameters()})
    return gradcheck(loss, wrt, h, tolerance, max_entries, seed, pattern=activation_pattern(model))
