"""What every demo shares: its command line (--quick, --out), a seeded model, and a quiet fit.

Not a demo itself: the numbered scripts import it (python puts demos/ on the path when one runs).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import scratchvae as sv
from scratchvae.train import fit


def parse_args(doc: str, name: str, **extra) -> argparse.Namespace:
    """--quick (a CI-sized run that still writes every figure), --out DIR (default runs/<name>),
    --seed, and the demo's own options given as name=(type, default, help)."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds) that writes every figure")
    p.add_argument("--out", type=Path, default=Path("runs") / name, help=f"output folder (default runs/{name})")
    p.add_argument("--seed", type=int, default=0)
    for key, (kind, default, text) in extra.items():
        p.add_argument("--" + key.replace("_", "-"), type=kind, default=default, help=text)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"figures go to {args.out}/")
    return args


def make(arch: str, kind: str, latent_dim: int, seed: int, beta: float = 1.0, **kw):
    """build_model with seeded initial weights (sv.manual_seed) and a seeded eps generator."""
    sv.manual_seed(seed)
    return sv.build_model(arch, kind, latent_dim, beta=beta, rng=np.random.default_rng(seed), **kw)


def train(model, x_train: np.ndarray, x_test: np.ndarray, epochs: int, batch_size: int = 100,
          lr: float = 1e-3, seed: int = 0, label: str = "") -> list[dict]:
    """Adam + train.fit (which prints a line per epoch); returns the metrics rows (for plots.save_loss_curves)."""
    start = time.perf_counter()
    history = fit(model, sv.Adam(model.parameters(), lr=lr), x_train, x_test, epochs, batch_size,
                  np.random.default_rng(seed), progress=False)   # fit prints a line per epoch
    print(f"{label} trained in {time.perf_counter() - start:.0f} s".strip())
    model.eval()
    return [m.as_json() for m in history]
