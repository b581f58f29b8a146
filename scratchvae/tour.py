"""A guided tour of VAE.backward: the chain rule, one step a line, each step checked on its own.

On a tiny float64 VAE and one small batch with eps held fixed, ``run_tour`` unrolls the
model's backward pass exactly as VAE.backward runs it (docs/derivations/elbo.md):

    dpred = recon_loss.backward()                          [ELBO-2]
    dz    = decoder layers' backward, last to first        [ELBO-3]
    dmu, dlogvar = reparam.backward(dz) + beta * kl.backward()   [ELBO-4] [ELBO-5]
    dx    = encoder layers' backward on concat(dmu, dlogvar), last to first   [ELBO-6]

and for each step compares what arrived out of it with central finite differences
(gradcheck.numerical_gradient) of a scalar that step alone defines:

    a layer:           sum(layer.forward(x) * dout)  w.r.t. x and each parameter
                       (its derivative w.r.t. x is dout's pull-back, which backward must give)
    the loss:          recon(pred, x) w.r.t. pred
    reparameterize:    sum(reparam.forward(mu, logvar, eps) * dz) w.r.t. mu and logvar
    KL:                kl(mu, logvar) w.r.t. mu and logvar
    concat -> dh:      the whole loss as a function of the encoder's output h

Finally the unrolled chain's dx and parameter gradients are compared with model.backward()'s:
the tour is the model's backward, not a re-implementation of it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .gradcheck import numerical_gradient, relative_error
from .models.mlp import mlp_decoder, mlp_encoder
from .models.vae import VAE
from .nn import Conv2d, ConvTranspose2d, Flatten, Linear, ReLU, Reshape, Sequential, manual_seed
from .nn.module import Module

MODELS = ("mlp", "conv")
BATCH = 3
TOLERANCE = 1e-6      # the package's gradient-check tolerance (gradcheck.DEFAULT_TOLERANCE)
H = 1e-6              # finite-difference step: every scalar checked here is O(1..10) (see gradcheck.py)
CHAIN_RTOL = 1e-12    # unrolled chain vs model.backward(): the same calls on the same arrays

#: loss class name -> (step label, dpred formula)
LOSS_FORMULAS = {
    "BCEWithLogits": ("BCE from logits", "dpred = (sigmoid(a) - t) / N  [BCE-2] [LOSS-1]"),
    "BCE": ("BCE on probabilities", "dpred = (p - t) / max(p (1 - p), tiny) / N  [BCE-4] [LOSS-1]"),
    "MSE": ("MSE", "dpred = 2 (p - t) / N  [MSE-1] [LOSS-1]"),
    "RMSE": ("RMSE", "dpred = (p - t) / (D r) / N  [RMSE-1] [LOSS-1]"),
}
REPARAM_FORMULAS = ("dmu = dz  [REP-2]", "dlogvar = dz * eps * std / 2  [REP-3]")
KL_FORMULAS = ("dmu_kl = mu / N  [KL-2]", "dlogvar_kl = (exp(logvar) - 1) / (2 N)  [KL-3]")
CONCAT_FORMULAS = ("dmu = dz + beta * mu / N  [ELBO-4]",
                   "dlogvar = dz * eps * std / 2 + beta * (exp(logvar) - 1) / (2 N)  [ELBO-5]",
                   "dh = concat(dmu, dlogvar)  [ELBO-6]")


@dataclass
class Grad:
    """One gradient a step produces: its name (dx, dweight, ...), shape, formula and check."""

    name: str
    shape: tuple[int, ...]
    formula: str
    rel_error: float

    def as_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "formula": self.formula,
                "rel_error": self.rel_error, "ok": self.rel_error < TOLERANCE}


@dataclass
class Step:
    """One step of the backward pass: what arrives (dout) and what leaves (grads)."""

    name: str
    dout_shape: tuple[int, ...] | None  # None: the scalar loss (dout = 1)
    grads: list[Grad] = field(default_factory=list)
    note: str = ""
    dout_count: int = 1                 # how many arrays of that shape arrive (concat: dmu and dlogvar)

    @property
    def ok(self) -> bool:
        return all(g.rel_error < TOLERANCE for g in self.grads)

    def as_json(self) -> dict:
        return {"step": self.name, "dout_shape": None if self.dout_shape is None else list(self.dout_shape),
                "dout_count": self.dout_count,
                "grads": [g.as_json() for g in self.grads], "note": self.note, "ok": self.ok}


@dataclass
class Tour:
    model: str
    seed: int
    x_shape: tuple[int, ...]
    steps: list[Step]
    chain_max_rel_diff: float       # unrolled chain vs model.backward(), over dx and every parameter gradient
    chain_arrays: int               # how many arrays that compared
    unrolled: dict[str, np.ndarray] = field(default_factory=dict, repr=False)        # "input" and each parameter
    model_backward: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # the same from model.backward()
    objective: str = "elbo"
    iw_samples: int = 1

    @property
    def max_error(self) -> float:
        return max(g.rel_error for s in self.steps for g in s.grads)

    @property
    def chain_equal(self) -> bool:
        return self.chain_max_rel_diff <= CHAIN_RTOL

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and self.chain_equal

    def ids(self) -> list[str]:
        """Every derivation id the tour cites, in order of appearance (without brackets)."""
        seen: list[str] = []
        for text in (t for s in self.steps for t in [s.name] + [g.formula for g in s.grads]):
            seen += [i for i in re.findall(r"\[([A-Z]+-\d+)\]", text) if i not in seen]
        return seen

    def summary(self) -> str:
        return (f"{'OK' if self.ok else 'FAIL'}: {len(self.steps)} steps, max rel. error vs finite differences "
                f"{self.max_error:.1e} (tolerance {TOLERANCE:.0e}); unrolled chain vs model.backward(): "
                f"{self.chain_arrays} arrays, max rel. difference {self.chain_max_rel_diff:.1e} "
                f"({'equal' if self.chain_equal else 'DIFFERENT'})")

    def as_json(self) -> list[dict]:
        """The steps, then a last object for the chain-vs-model.backward() check."""
        final = {"step": "unrolled chain == model.backward()", "model": self.model, "seed": self.seed,
                 "objective": self.objective, "iw_samples": self.iw_samples,
                 "x_shape": list(self.x_shape), "arrays": self.chain_arrays,
                 "max_rel_diff": self.chain_max_rel_diff, "max_error": self.max_error,
                 "tolerance": TOLERANCE, "ok": self.ok}
        return [s.as_json() for s in self.steps] + [final]


def tiny_vae(model: str = "mlp", seed: int = 0, objective: str = "elbo",
             iw_samples: int = 1) -> tuple[VAE, np.ndarray, np.ndarray]:
    """(vae, x, eps): a float64 VAE small enough for finite differences of every entry, a batch
    of BATCH images in [0, 1] and a fixed eps, (N, L), or (N, K, L) for objective 'iwae'. mlp:
    1x4x4 images, hidden 6, latent 2. conv: 1x6x6 images, Conv2d(1, 2, 3, s2, p1) -> 2x3x3 ->
    Linear, and back through ConvTranspose2d."""
    if model not in MODELS:
        raise ValueError(f"unknown tour model '{model}', choose from {', '.join(MODELS)}")
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    latent = 2
    if model == "mlp":
        shape = (1, 4, 4)
        encoder, decoder = mlp_encoder(shape, 6, 2 * latent), mlp_decoder(latent, 6, shape, final_sigmoid=False)
    else:
        shape = (1, 6, 6)
        encoder = Sequential(Conv2d(1, 2, 3, stride=2, padding=1), ReLU(inplace=True),   # (N, 2, 3, 3)
                             Flatten(), Linear(18, 2 * latent))                          # (N, 2L)
        decoder = Sequential(Linear(latent, 18), ReLU(inplace=True), Reshape((2, 3, 3)),
                             ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1))  # (N, 1, 6, 6)
    vae = VAE(encoder, decoder, latent, "bce", rng=rng, objective=objective, iw_samples=iw_samples).to(np.float64)
    x = rng.random((BATCH,) + shape)                                 # (N, C, H, W) in [0, 1]
    samples = (iw_samples,) if objective == "iwae" else ()
    eps = rng.standard_normal((BATCH, *samples, latent))             # (N, L) or (N, K, L), held fixed
    return vae, x, eps


def _formula(layer: Module, name: str) -> str:
    """The layer's formula for the gradient of x or of a parameter (its class's FORMULAS)."""
    try:
        return layer.FORMULAS[name]
    except KeyError:
        raise ValueError(f"tour: {type(layer).__name__}.FORMULAS has no formula for '{name}'") from None


def _check_layer(name: str, layer: Module, x_in: np.ndarray, dout: np.ndarray, dx: np.ndarray,
                 pgrads: dict[str, np.ndarray]) -> Step:
    """Finite differences of sum(layer.forward(x) * dout) w.r.t. x and each parameter."""
    x = np.array(x_in, dtype=np.float64, order="C")                  # contiguous, perturbed in place

    def scalar() -> float:
        return float(np.sum(layer.forward(x.copy()) * dout))         # a copy: an in-place ReLU overwrites its input

    step = Step(f"{name} {type(layer).__name__}", dout.shape)
    step.grads.append(Grad("dx", dx.shape, _formula(layer, "x"), relative_error(dx, numerical_gradient(scalar, x, H))))
    for pname, p in layer.named_parameters():
        step.grads.append(Grad(f"d{pname}", p.shape, _formula(layer, pname),
                               relative_error(pgrads[pname], numerical_gradient(scalar, p.data, H))))
    if layer.units_on() is not None:                                 # a kink at 0 (ReLU)
        step.note = f"min |x| = {np.abs(x).min():.1e} (finite differences need it >> {H:.0e}: no kink crossed)"
    return step


def run_tour(model: str = "mlp", seed: int = 0) -> Tour:
    """Unroll the backward pass of a tiny VAE (tiny_vae) step by step and check every step."""
    vae, x, eps = tiny_vae(model, seed)
    L, beta = vae.latent_dim, vae.beta
    target = x.copy()

    # forward, once for the layers' inputs (trace), then once more as model.loss runs it, caches and all
    mu, logvar = (a.copy() for a in vae.encode(x))                   # (N, L) each
    rows = vae.trace(x, vae.posterior.forward(mu, logvar, eps))        # (name, layer, input, output) per layer
    vae.zero_grad()
    vae.loss(x, target, eps)                                         # every cache as model.loss leaves it
    dec = [r for r in rows if r[0].startswith("decoder")]
    enc = [r for r in rows if r[0].startswith("encoder")]
    pred_in = vae.recon_loss.cache.pred.reshape(vae.recon_loss.cache.shape).copy()

    # -- the backward chain, unrolled: the model's backward, one call at a time -------------------
    chain = []  # (kind, data) recorded in order; checks come after, since they rerun forward passes
    dpred = vae.recon_loss.backward(1.0)                             # [ELBO-2]
    chain.append(("loss", dpred.copy()))
    dz = layers_backward(dec, dpred, chain)                          # [ELBO-3]
    dmu, dlogvar = vae.posterior.backward(dz)
    chain.append(("reparam", (dz.copy(), dmu.copy(), dlogvar.copy())))
    dmu_kl, dlogvar_kl = vae.kl.backward(1.0)
    chain.append(("kl", (dmu_kl.copy(), dlogvar_kl.copy())))
    dmu = dmu + beta * dmu_kl                                        # [ELBO-4]
    dlogvar = dlogvar + beta * dlogvar_kl                            # [ELBO-5]
    dh = vae.posterior.params_backward(dmu, dlogvar)                 # [ELBO-6]
    chain.append(("concat", dh.copy()))
    dx_chain = layers_backward(enc, dh, chain)
    unrolled, from_model, diffs = compare_with_model_backward(vae, x, target, eps, dx_chain)

    # -- each step against finite differences --------------------------------------------------
    loss_label, loss_formula = LOSS_FORMULAS[type(vae.recon_loss).__name__]
    steps = []
    for kind, data in chain:
        if kind == "loss":
            pred = pred_in.copy()
            num = numerical_gradient(lambda: vae.recon_loss.forward(pred, target), pred, H)
            steps.append(Step(f"loss -> dpred ({loss_label})", None,
                              [Grad("dpred", data.shape, loss_formula, relative_error(data, num))]))
        elif kind == "layer":
            steps.append(_check_layer(*data))
        elif kind == "reparam":
            dz_in, a_mu, a_lv = data
            m, lv = mu.copy(), logvar.copy()

            def scalar() -> float:
                return float(np.sum(vae.posterior.forward(m, lv, eps) * dz_in))
            steps.append(Step("reparameterize  z = mu + exp(logvar / 2) * eps  [REP-1]", dz_in.shape, [
                Grad("dmu", a_mu.shape, REPARAM_FORMULAS[0], relative_error(a_mu, numerical_gradient(scalar, m, H))),
                Grad("dlogvar", a_lv.shape, REPARAM_FORMULAS[1],
                     relative_error(a_lv, numerical_gradient(scalar, lv, H)))]))
        elif kind == "kl":
            a_mu, a_lv = data
            m, lv = mu.copy(), logvar.copy()

            def kl() -> float:
                return vae.kl.forward(m, lv)
            steps.append(Step(f"KL (times beta = {beta:g})  [KL-1]", None, [
                Grad("dmu_kl", a_mu.shape, KL_FORMULAS[0], relative_error(a_mu, numerical_gradient(kl, m, H))),
                Grad("dlogvar_kl", a_lv.shape, KL_FORMULAS[1], relative_error(a_lv, numerical_gradient(kl, lv, H)))]))
        else:  # concat: the whole loss as a function of the encoder's output h
            h = np.concatenate([mu, logvar], axis=1)

            def loss_of_h() -> float:
                m, lv = h[:, :L], h[:, L:]
                zz = vae.posterior.forward(m, lv, eps)
                return vae.recon_loss.forward(vae.decoder.forward(zz), target) + beta * vae.kl.forward(m, lv)
            err = relative_error(data, numerical_gradient(loss_of_h, h, H))
            step = Step("concat -> dh  (dmu, dlogvar: reparameterize + beta * KL)", dmu.shape,
                        [Grad("dh", data.shape, ";  ".join(CONCAT_FORMULAS), err)],
                        note="checked against d loss / d h: the whole decoder side at once", dout_count=2)
            steps.append(step)
    return Tour(model, seed, x.shape, steps, max(diffs), len(diffs), unrolled, from_model)


def layers_backward(rows: list, dout: np.ndarray, chain: list) -> np.ndarray:
    """Each layer's backward of ``rows`` (vae.trace's, one network), last to first, as the
    network's backward runs them; records ("layer", (name, layer, input, dout, dx, grads)) in
    ``chain`` for _check_layer. Returns the last dx."""
    for name, layer, x_in, _ in reversed(rows):
        d_in = dout.copy()
        dout = layer.backward(dout)
        chain.append(("layer", (name, layer, x_in, d_in, dout.copy(),
                                {n: p.grad.copy() for n, p in layer.named_parameters()})))
    return dout.copy()


def compare_with_model_backward(vae: VAE, x: np.ndarray, target: np.ndarray, eps: np.ndarray,
                                dx_chain: np.ndarray) -> tuple[dict, dict, list[float]]:
    """The unrolled chain's dx and parameter gradients (now in .grad) against model.backward()'s on
    the same forward: (unrolled, from_model, relative difference of each array)."""
    unrolled = {"input": dx_chain, **{n: p.grad.copy() for n, p in vae.named_parameters()}}
    vae.zero_grad()
    vae.loss(x, target, eps)
    from_model = {"input": vae.backward().copy(), **{n: p.grad.copy() for n, p in vae.named_parameters()}}
    return unrolled, from_model, [relative_error(from_model[n], unrolled[n]) for n in unrolled]


def _dout(step: Step) -> str:
    if step.dout_shape is None:
        return "scalar (dloss = 1)"
    return ("" if step.dout_count == 1 else f"{step.dout_count} x ") + str(tuple(step.dout_shape))


def format_tour(tour: Tour) -> str:
    """The tour as text: per step its name, dout's shape, then per gradient shape, check and formula."""
    what = "" if tour.objective == "elbo" else f", IWAE K = {tour.iw_samples}"
    lines = [f"backward tour: {tour.model} VAE{what}, x {tuple(tour.x_shape)}, float64, eps fixed, seed {tour.seed}; "
             f"rel. error = ||analytic - numeric|| / max(norms), central differences h = {H:.0e}"]
    for i, s in enumerate(tour.steps, 1):
        lines.append(f"{i:2d}. {s.name}   dout {_dout(s)}")
        width = max(len(g.name) for g in s.grads)
        for g in s.grads:
            mark = "" if g.rel_error < TOLERANCE else "  <-- above tolerance"
            first, *more = g.formula.split(";  ")
            lines.append(f"      {g.name:<{width}} {str(tuple(g.shape)):<14} rel. err {g.rel_error:.1e}{mark}"
                         f"   {first}")
            lines += [" " * (6 + width + 1 + 14 + 1 + 16) + f"   {f}" for f in more]
        lines += [f"      ({line})" for line in s.note.splitlines()]
    lines.append(tour.summary())
    return "\n".join(lines)
