"""The importance-sampled log-likelihood, ours against the same computation in PyTorch.

Both run evaluation.importance_sampled_nll's algorithm on the same weights and the same
noise, each on every core (ours on one worker per core, parallel.inference_workers; PyTorch
on its own threads): the networks in float32; each image's K samples decoded in chunks of at most
batch_size rows (whole images when K <= batch_size); log p(x|z) per pixel in float32 and
summed in float64; the log-weights and the running log-sum-exp in float64. The noise is
drawn with NumPy for both (the same draws, the same cost), so the two estimates agree to the
networks' float32 rounding, and the report prints how closely.

The images are the bundled MNIST test set's first n, binarized at 0.5, and the weights
the model's seeded initial ones: the time does not depend on what the weights learnt.
"""
from __future__ import annotations

import math

import numpy as np

from scratchvae.data import load_dataset
from scratchvae.evaluation import importance_sampled_nll
from scratchvae.models import build_model
from scratchvae.nn.init import manual_seed

from timing import alternating_ms, median_ms

LOG_2PI = math.log(2 * math.pi)


def test_images(n: int) -> np.ndarray:
    """The first n bundled MNIST test images, binarized at 0.5, (n, 1, 28, 28) float32."""
    x = load_dataset("mnist").test[:n]
    return (x > 0.5).astype(np.float32)


def torch_importance_sampled_nll(tmodel, latent_dim: int, x: np.ndarray, k: int, batch_size: int,
                                 rng: np.random.Generator):
    """evaluation.importance_sampled_nll, line for line, on the torch twin (module docstring)."""
    import torch
    import torch.nn.functional as F

    images_per_chunk, samples_per_chunk = max(1, batch_size // k), min(k, batch_size)
    n = x.shape[0]
    nll = torch.empty(n, dtype=torch.float64)
    with torch.no_grad():
        tx = torch.from_numpy(x)
        h_all = torch.cat([tmodel.encoder(tx[s:s + batch_size]) for s in range(0, n, batch_size)]).double()
        for start in range(0, n, images_per_chunk):
            xc = tx[start:start + images_per_chunk].flatten(1)                    # (B, D)
            b = xc.shape[0]
            h = h_all[start:start + b]                                            # (B, 2L)
            mu, logvar = h[:, None, :latent_dim], h[:, None, latent_dim:]         # (B, 1, L) each
            running_max = torch.full((b,), -math.inf, dtype=torch.float64)
            running_sum = torch.zeros(b, dtype=torch.float64)
            for k0 in range(0, k, samples_per_chunk):
                kc = min(samples_per_chunk, k - k0)
                eps = torch.from_numpy(rng.standard_normal((b, kc, latent_dim)))  # (B, kc, L)
                z = mu + torch.exp(0.5 * logvar) * eps                            # (B, kc, L)
                logits = tmodel.decoder(z.reshape(-1, latent_dim).float()).flatten(1)  # (B*kc, D)
                target = xc.repeat_interleave(kc, dim=0)                          # (B*kc, D)
                log_px_z = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(
                    1, dtype=torch.float64)                                       # (B*kc,)
                log_pz = torch.sum(-0.5 * z * z - 0.5 * LOG_2PI, -1)              # (B, kc)
                log_qz = torch.sum(-0.5 * eps * eps - 0.5 * logvar - 0.5 * LOG_2PI, -1)  # (B, kc)
                log_w = log_px_z.reshape(-1, kc) + log_pz - log_qz                # (B, kc)
                new_max = torch.maximum(running_max, log_w.max(1).values)
                running_sum = running_sum * torch.exp(running_max - new_max) + torch.exp(
                    log_w - new_max[:, None]).sum(1)
                running_max = new_max
            nll[start:start + b] = -(running_max + torch.log(running_sum) - math.log(k))
    return nll.numpy()


def bench_nll(arch: str, k: int, n: int, batch_size: int, repeats: int, torch_ok: bool) -> dict:
    """Seconds per estimate of the nll of n test images with K samples each, ours and PyTorch's
    (taking turns), and how far apart the two estimates are."""
    manual_seed(0)
    model = build_model(arch, rng=np.random.default_rng(0))
    model.eval()
    x = test_images(n)

    def ours():
        return importance_sampled_nll(model, x, k, batch_size, rng=np.random.default_rng(1), progress=False)

    row = {"nll_k": k, "nll_images": n, "nll_batch_size": batch_size}
    if not torch_ok:
        row["nll_s"] = median_ms(ours, repeats, warmup=1) / 1e3
        return row
    from torch_twin import TorchVAE
    tmodel = TorchVAE(model).eval()

    def theirs():
        return torch_importance_sampled_nll(tmodel, model.latent_dim, x, k, batch_size, np.random.default_rng(1))

    diff = np.abs(ours() - theirs())                               # same weights, same noise
    ours_ms, torch_ms = alternating_ms([ours, theirs], repeats, warmup=0, block=1)
    row.update({"nll_s": ours_ms / 1e3, "torch_nll_s": torch_ms / 1e3, "nll_ratio": ours_ms / torch_ms,
                "nll_max_abs_diff": float(diff.max())})
    return row
