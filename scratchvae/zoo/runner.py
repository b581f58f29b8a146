"""Run one bug of the zoo: the cheap detectors, then a short training of the buggy and the correct
model (same seed, same data, same order, same eps) and the detectors that need trained models.

The two MLP VAEs (784-400-L, Bernoulli likelihood) train on the first ``train_size`` MNIST
images, binarized once, and are evaluated on the first ``n_test`` held-out images (binarized
by the fixed rule every run uses). What a trained buggy model is measured on is its
honest_view (bugs.py): the distribution it really samples from, through evaluation.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from ..data.datasets import load_dataset, prepare
from ..errors import UsageError
from ..evaluation import elbo_per_image, importance_sampled_nll
from ..models import VAE
from ..objective import IWAE
from ..optim import Adam
from ..train import EpochMetrics, TrainingFault, fit
from . import detectors as det
from .bugs import Bug, buggy_model, correct_model, honest_view
from .pieces import log_weights, nll_log_of_mean, nll_mean_of_logs

#: the samples' diversity (mean over pixels of the std across prior samples) counts as visibly
#: changed when it is below half or above twice the correct model's
DIVERSITY_FACTOR = 2.0
SAMPLES = 100


@dataclass(frozen=True)
class Settings:
    """How big the trainings are. quick(): a seconds-long run for tests and --quick."""

    train_size: int = 10000
    epochs: int = 10
    n_test: int = 1000
    k: int = 100                      # importance samples for the nll rows
    k_curve: tuple[int, ...] = (1, 3, 10, 30, 100, 300, 1000)   # the estimator against K (iwae figure)
    latent_dim: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    progress: bool = True

    @classmethod
    def quick(cls, **kw) -> "Settings":
        return cls(**{"train_size": 2000, "epochs": 3, "n_test": 200, "k": 20, "k_curve": (1, 3, 10, 30), **kw})


@dataclass
class Trained:
    """One trained model: its history, the NaN stop (if any), and what the evaluation measured."""

    model: VAE
    history: list[EpochMetrics]
    fault: str | None = None
    elbo: np.ndarray | None = None    # (N,) honest -ELBO per held-out image
    kl: np.ndarray | None = None      # (N,) its KL part
    nll: np.ndarray | None = None     # (N,) the nll estimate (the buggy estimator for iwae-mean-log)
    samples: np.ndarray | None = None  # (SAMPLES, 1, 28, 28) decoded prior draws
    own: tuple[np.ndarray, np.ndarray] | None = None   # (N,) each: the model's own loss and its KL
    #: (N,) each: what evaluation measures of the objective the code claims to compute, and its KL part:
    #: the honest -ELBO, or for an importance-weighted objective the K-sample bound (IWAE.per_image)
    reference: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class ZooRun:
    bug: Bug
    settings: Settings
    verdicts: list[det.Verdict]
    correct: Trained
    buggy: Trained
    x_test: np.ndarray
    curve: dict[str, list[float]] = field(default_factory=dict)   # iwae: K, log of mean, mean of logs, -ELBO


def negative_elbo_per_image(model: VAE, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(-ELBO, KL) of each image, (N,) each, one z per image: what evaluation.elbo_terms averages."""
    recon, kl = elbo_per_image(model, x, rng=rng)                # (N,) each
    return recon + kl, kl


def _train(model: VAE, x_train: np.ndarray, x_test: np.ndarray, s: Settings, label: str) -> Trained:
    tqdm.write(f"training the {label} model ({s.epochs} epochs on {len(x_train)} images)")
    history: list[EpochMetrics] = []
    try:
        fit(model, Adam(model.parameters(), lr=s.lr), x_train, x_test, s.epochs, s.batch_size,
            np.random.default_rng(s.seed), progress=s.progress, workers=1, on_epoch=history.append)
    except TrainingFault as err:
        tqdm.write(f"  stopped: {err}")
        return Trained(model, history, str(err))
    return Trained(model, history)


def _evaluate(bug: Bug, t: Trained, x: np.ndarray, s: Settings, buggy: bool) -> None:
    """Prior samples; unless training stopped, the model's own loss, the honest -ELBO, KL and nll
    of each image. With buggy: of the buggy model, or through the buggy estimator."""
    view = honest_view(bug, t.model, buggy and not bug.in_estimator)
    t.samples = view.sample(SAMPLES, np.random.default_rng([s.seed, 3]))
    if t.fault is not None:
        return
    t.own = own_loss_per_image(t.model, x, np.random.default_rng([s.seed, 5]))
    t.elbo, t.kl = negative_elbo_per_image(view, x, np.random.default_rng([s.seed, 1]))
    t.reference = (t.elbo, t.kl) if bug.objective != "iwae" else bound_per_image(view, x, bug.iw_samples, s.seed)
    if buggy and bug.in_estimator:
        t.nll = nll_mean_of_logs(log_weights(view, x, s.k, np.random.default_rng([s.seed, 2])))
    else:
        t.nll = importance_sampled_nll(view, x, s.k, rng=np.random.default_rng([s.seed, 2]), progress=s.progress)


def reference_name(bug: Bug) -> str:
    """What the code's loss is compared with (Trained.reference)."""
    return "-ELBO" if bug.objective != "iwae" else f"bound (K = {bug.iw_samples})"


def bound_per_image(model: VAE, x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The negative K-sample bound of each image and its mean KL, (N,) each, by the library's IWAE [IWG-2]."""
    xm = x.astype(model.dtype, copy=False)
    terms = IWAE(k).per_image(model, xm, xm, np.random.default_rng([seed, 1]))  # (N,) each
    return terms["loss"], terms["kl"]


def cheap_verdicts(bug: Bug, seed: int) -> list[det.Verdict]:
    """The detectors on the tiny float64 model (detectors.py), in the order the tables show them."""
    return [det.gradient_check(bug, seed), det.std_of_z(bug, seed), det.kl_vs_monte_carlo(bug, seed),
            det.recon_is_log_likelihood(bug, seed), det.iwae_weights(bug, seed), det.gradient_vs_bound(bug, seed)]


def run_bug(bug: Bug, s: Settings = Settings()) -> ZooRun:
    verdicts = cheap_verdicts(bug, s.seed)
    data = load_dataset("mnist", train_size=s.train_size)
    x_train, x_test = prepare(data, "static", np.random.default_rng(s.seed))
    x_test = x_test[:s.n_test]
    correct = _train(correct_model(bug, s.latent_dim, s.seed), x_train, x_test, s, "correct")
    if correct.fault:
        raise UsageError(f"the correct model stopped on a NaN ({correct.fault}); try a lower --lr")
    _evaluate(bug, correct, x_test, s, False)
    if bug.in_estimator:                        # the bug is in the estimate, not in the model
        buggy = Trained(correct.model, correct.history)
        _evaluate(bug, buggy, x_test, s, True)
    else:
        buggy = _train(buggy_model(bug, s.latent_dim, s.seed), x_train, x_test, s, "buggy")
        _evaluate(bug, buggy, x_test, s, True)
    verdicts += trained_verdicts(correct, buggy, reference_name(bug))
    run = ZooRun(bug, s, verdicts, correct, buggy, x_test)
    if bug.in_estimator:
        run.curve = k_curve(bug, correct, x_test, s)
    return run


def own_loss_per_image(model: VAE, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What the model's own loss (its objective, buggy pieces and all) says of each image, and its
    KL, (N,) each, float64: the per-image terms of the number its training printed."""
    xm = x.astype(model.dtype, copy=False)
    terms = model.objective.per_image(model, xm, xm, rng)       # (N,) each
    return terms["loss"], terms["kl"]


def trained_verdicts(correct: Trained, buggy: Trained, reference: str = "-ELBO") -> list[det.Verdict]:
    """The detectors that need the trained pair (evaluated by _evaluate); ``reference`` names what the
    code's loss is compared with (reference_name)."""
    finite = buggy.fault is None
    out = [det.Verdict("training: NaN stop", buggy.fault if not finite else
                       f"finite losses and gradients through all {len(buggy.history)} epochs", not finite)]
    if finite:
        out += _evaluation_verdicts(correct, buggy, reference)
    else:
        out += [det.Verdict(name, "not run: training stopped", None) for name in
                ("ELBO: the loss vs evaluated", "ELBO vs correct model", "nll vs correct model", "nll below the -ELBO")]
    div_b, div_c = (float(t.samples.reshape(SAMPLES, -1).std(axis=0).mean()) for t in (buggy, correct))
    ratio = div_b / div_c
    out.append(det.Verdict("samples: diversity", f"pixel std across {SAMPLES} samples {div_b:.3f}, correct "
                           f"{div_c:.3f} (x{ratio:.2f})" + ("" if finite else ", the buggy's last weights"),
                           not 1 / DIVERSITY_FACTOR <= ratio <= DIVERSITY_FACTOR, {"buggy": div_b, "correct": div_c}))
    out.append(det.pseudo_inputs_in_range(buggy.model))         # the buggy's last weights, if it stopped
    return out


def _evaluation_verdicts(correct: Trained, buggy: Trained, reference: str) -> list[det.Verdict]:
    own, own_kl = buggy.own
    evaluated, evaluated_kl = buggy.reference
    g, e, _ = det.paired_gap(own, evaluated)
    counts = bool(abs(g) > det.SIGMAS * e and abs(g) > det.MIN_GAP)     # either way: the loss misreports
    out = [det.Verdict("ELBO: the loss vs evaluated", f"the code's loss {own.mean():.2f} (KL {own_kl.mean():.2f}), "
                       f"evaluated {reference} {evaluated.mean():.2f} (KL {evaluated_kl.mean():.2f}): {g:+.2f} +- "
                       f"{e:.2f}", counts, {"loss": float(own.mean()), "evaluated": float(evaluated.mean()), "gap": g,
                                            "stderr": e})]
    for name, worse, better in (("ELBO vs correct model", buggy.elbo, correct.elbo),
                                ("nll vs correct model", buggy.nll, correct.nll)):
        g, e, counts = det.paired_gap(worse, better)
        out.append(det.Verdict(name, f"buggy {worse.mean():.2f}, correct {better.mean():.2f}: {g:+.2f} +- {e:.2f}",
                               counts, {"buggy": float(worse.mean()), "correct": float(better.mean()),
                                        "gap": g, "stderr": e}))
    g, e, tightens = det.paired_gap(buggy.elbo, buggy.nll)
    out.append(det.Verdict("nll below the -ELBO", f"-ELBO {buggy.elbo.mean():.2f}, nll {buggy.nll.mean():.2f}: "
                           f"{g:+.2f} +- {e:.2f} below", not tightens, {"gap": g, "stderr": e}))
    return out


def k_curve(bug: Bug, correct: Trained, x: np.ndarray, s: Settings) -> dict[str, list[float]]:
    """Both reductions of the same log-weights for K = s.k_curve (prefixes of one draw of K_max)."""
    log_w = log_weights(honest_view(bug, correct.model, False), x, max(s.k_curve), np.random.default_rng([s.seed, 4]))
    return {"k": list(s.k_curve),
            "log_of_mean": [float(nll_log_of_mean(log_w[:, :k]).mean()) for k in s.k_curve],
            "mean_of_logs": [float(nll_mean_of_logs(log_w[:, :k]).mean()) for k in s.k_curve],
            "elbo": float(correct.elbo.mean())}
