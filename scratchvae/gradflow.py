"""Gradient flow of a training run (``scratchvae train --trace-grads``): DIR/gradflow.npz and .png.

Per optimizer step:
    norms[s, j]   ||grad of parameter j||_2 (named by state_dict name), before any --clip
    recon[s]      ||d recon / dh||_2          h = encoder output (N, 2L) = concat(mu, logvar)
    kl[s]         ||beta * d KL / dh||_2      (beta: the step's KL weight, --kl-warmup included)
Per epoch:
    kl_per_dim[e, d]  held-out mean of 0.5 * (mu_d^2 + exp(logvar_d) - 1 - logvar_d), nats

The KL part is the closed form from the mu/logvar the KL cached in the step's forward,
    beta * concat(mu / N, (exp(logvar) - 1) / (2 N))                      [KL-2], [KL-3]
and the reconstruction part is what the encoder's backward received minus it, dh - kl_part:
VAE.backward's arithmetic is untouched (a hook on the VAE's _encoder_backward only reads dh).
Tracing runs on one worker (the step runs on the model itself, not on replicas).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import save_npz_atomic
from .distributions import DiagonalGaussian, GaussianKL, make_posterior
from .evaluation import kl_per_dimension


def kl_part(mu: np.ndarray, logvar: np.ndarray, beta: float, dloss: float = 1.0,
            posterior: str | DiagonalGaussian = "logvar") -> np.ndarray:
    """beta * d KL / dh, (N, 2L): the closed-form KL's gradient (GaussianKL.grads) through the
    posterior's parameterisation (DiagonalGaussian.params_backward; with 'logstd' the second
    half's part is 2 * dlogvar, [LOGSTD-2]), in the operation order of the ELBO's backward."""
    posterior = make_posterior(posterior) if isinstance(posterior, str) else posterior
    dmu, dlogvar = GaussianKL.grads(mu, logvar, dloss)           # (N, L) each
    return posterior.params_backward(beta * dmu, beta * dlogvar)  # (N, 2L)


def split_encoder_grad(dh: np.ndarray, mu: np.ndarray, logvar: np.ndarray, beta: float,
                       dloss: float = 1.0, posterior: str | DiagonalGaussian = "logvar"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(recon part, KL part) of dh, the gradient at the encoder output: dh = recon + kl."""
    kl = kl_part(mu, logvar, beta, dloss, posterior)
    return dh - kl, kl


class GradTracer:
    """Records a VAE's gradient flow step by step; ``install()`` once, then the training loop
    calls ``on_grads(model)`` after each backward and ``epoch_extras()`` after each epoch."""

    def __init__(self, model, x_test: np.ndarray) -> None:
        self.model, self.x_test = model, x_test
        self.names = [name for name, _ in model.named_parameters()]
        self.norms: list[np.ndarray] = []      # (P,) per step
        self.recon: list[float] = []
        self.kl: list[float] = []
        self.step_epoch: list[int] = []        # the epoch (1-based) and step within it of each row
        self.step_index: list[int] = []
        self.kl_per_dim: list[np.ndarray] = []  # (L,) per epoch
        self.kl_epochs: list[int] = []
        self._pending: tuple[float, float] | None = None

    def install(self) -> None:
        """Wrap the model's _encoder_backward (an instance attribute shadows the method)."""
        original = self.model._encoder_backward

        def hook(dout: np.ndarray, input_grad: bool):
            cache = self.model.kl.cache
            recon, kl = split_encoder_grad(dout, cache.mu, cache.logvar, self.model.beta,
                                           posterior=self.model.posterior)
            self._pending = (float(np.linalg.norm(recon)), float(np.linalg.norm(kl)))
            return original(dout, input_grad)
        self.model._encoder_backward = hook

    def on_grads(self, model, epoch: int, step: int) -> None:
        """After the backward of step ``step`` (0-based) of ``epoch``, before clipping and the update."""
        if self._pending is None:
            raise RuntimeError("GradTracer: a step ran without the encoder hook (install() it, one worker)")
        self.norms.append(np.array([np.linalg.norm(p.grad) for p in model.parameters()], dtype=np.float64))
        self.recon.append(self._pending[0])
        self.kl.append(self._pending[1])
        self.step_epoch.append(epoch)
        self.step_index.append(step)
        self._pending = None

    def epoch_extras(self, epoch: int) -> dict:
        """The held-out KL per latent dimension after ``epoch``: recorded, and returned for metrics.jsonl."""
        per_dim = kl_per_dimension(self.model, self.x_test)
        self.kl_per_dim.append(per_dim)
        self.kl_epochs.append(epoch)
        return {"kl_per_dim": [float(v) for v in per_dim]}

    # -- the file --------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        p, L = len(self.names), self.model.latent_dim
        return {"names": np.array(self.names),
                "norms": np.array(self.norms, dtype=np.float64).reshape(-1, p),
                "recon": np.array(self.recon, dtype=np.float64),
                "kl": np.array(self.kl, dtype=np.float64),
                "step_epoch": np.array(self.step_epoch, dtype=np.int64),
                "step_index": np.array(self.step_index, dtype=np.int64),
                "kl_per_dim": np.array(self.kl_per_dim, dtype=np.float64).reshape(-1, L),
                "kl_epochs": np.array(self.kl_epochs, dtype=np.int64)}

    def save(self, path: Path) -> None:
        save_npz_atomic(path, self.arrays())

    def load(self, path: Path, epoch: int, step: int = 0) -> None:
        """Continue a resumed run's record: keep what happened up to the checkpoint (``epoch``
        epochs done and ``step`` steps of the next), drop anything recorded after it."""
        if not Path(path).exists():
            return
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        if list(a["names"]) != self.names:
            raise ValueError(f"{path}: its parameters do not match the model's")
        keep = (a["step_epoch"] <= epoch) | ((a["step_epoch"] == epoch + 1) & (a["step_index"] < step))
        self.norms = list(a["norms"][keep])
        self.recon, self.kl = list(a["recon"][keep]), list(a["kl"][keep])
        self.step_epoch, self.step_index = list(a["step_epoch"][keep]), list(a["step_index"][keep])
        keep_e = a["kl_epochs"] <= epoch
        self.kl_per_dim, self.kl_epochs = list(a["kl_per_dim"][keep_e]), list(a["kl_epochs"][keep_e])


def save_gradflow_figure(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """Three panels: per-parameter gradient norms and the recon/KL parts at the encoder output
    over steps (log y), and the held-out KL per latent dimension per epoch (heat map)."""
    from .plots import plt

    norms, names = arrays["norms"], [str(n) for n in arrays["names"]]
    steps = np.arange(1, norms.shape[0] + 1)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    ax = axes[0]
    cmap = plt.get_cmap("viridis")
    weights = [j for j, n in enumerate(names) if not n.endswith("bias")] or list(range(len(names)))
    for k, j in enumerate(weights):
        ax.plot(steps, np.maximum(norms[:, j], 1e-30), lw=0.9, color=cmap(k / max(len(weights) - 1, 1)),
                label=names[j])
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("gradient L2 norm per parameter (biases omitted)", fontsize=9)
    ax.legend(fontsize=6, ncol=2, loc="best")
    ax.grid(alpha=0.3, which="both")
    _epoch_lines(ax, arrays)

    ax = axes[1]
    ax.plot(steps, np.maximum(arrays["recon"], 1e-30), lw=1, label="recon: ||d recon / dh||")
    ax.plot(steps, np.maximum(arrays["kl"], 1e-30), lw=1, label="KL: ||beta d KL / dh||")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("gradient at the encoder output h = (mu, logvar)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    _epoch_lines(ax, arrays)

    ax = axes[2]
    per_dim, epochs = arrays["kl_per_dim"], arrays["kl_epochs"]
    if per_dim.size:
        im = ax.imshow(per_dim, aspect="auto", cmap="magma", interpolation="nearest",
                       extent=(-0.5, per_dim.shape[1] - 0.5, epochs[-1] + 0.5, epochs[0] - 0.5))
        fig.colorbar(im, ax=ax, label="nats")
        ax.set_yticks(epochs if len(epochs) <= 20 else epochs[::-(-len(epochs) // 20)])
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("epoch")
    ax.set_title("held-out KL per latent dimension (dark: collapsed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _epoch_lines(ax, arrays: dict[str, np.ndarray]) -> None:
    """A faint vertical line where each epoch starts."""
    se = arrays["step_epoch"]
    for s in np.flatnonzero(np.diff(se)) + 1:
        ax.axvline(s + 0.5, color="grey", lw=0.5, alpha=0.5)
