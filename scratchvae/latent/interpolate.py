"""Paths between two codes zA and zB, decoded step by step to show what lies between two images.

lerp (straight line):   z(alpha) = zA (1 - alpha) + zB alpha,   alpha in [0, 1]

slerp (great circle, Shoemake 1985; White 2016 for generative models):
    theta    = arccos( zA . zB / (|zA| |zB|) )
    z(alpha) = sin((1 - alpha) theta) / sin(theta) zA + sin(alpha theta) / sin(theta) zB

In many dimensions a draw from N(0, I) lies near the sphere of radius sqrt(L), and the midpoint of
a straight line between two such draws is shorter (|z| ~ sqrt(L / 2) for orthogonal ones): a code
the prior rarely produces. slerp keeps |z| = |zA| all the way when |zA| = |zB| (in general it
does not interpolate the norms exactly, but stays near the sphere). When theta is ~0 (parallel
codes), sin(theta) ~ 0 and slerp falls back to lerp, its limit.
"""
from __future__ import annotations

import numpy as np

_SMALL_ANGLE = 1e-6   # radians: below it, slerp is lerp to within ~theta^2


def _alphas(alpha: float | np.ndarray) -> np.ndarray:
    a = np.atleast_1d(np.asarray(alpha, dtype=np.float64))     # (S,)
    if np.any(a < 0) or np.any(a > 1):
        raise ValueError("interpolation weights alpha must lie in [0, 1]")
    return a


def lerp(za: np.ndarray, zb: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """zA (1 - alpha) + zB alpha for each alpha: (S, L) for codes (L,)."""
    a = _alphas(alpha)[:, None]                                  # (S, 1)
    return np.asarray(za, float) * (1.0 - a) + np.asarray(zb, float) * a  # (S, L)


def slerp(za: np.ndarray, zb: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation (module docstring), (S, L); lerp when the angle is ~0 or a code is 0."""
    za, zb = np.asarray(za, float), np.asarray(zb, float)        # (L,) each
    norms = np.linalg.norm(za) * np.linalg.norm(zb)
    if norms == 0:
        return lerp(za, zb, alpha)
    cos = np.clip(za @ zb / norms, -1.0, 1.0)
    theta = float(np.arccos(cos))
    if theta < _SMALL_ANGLE:
        return lerp(za, zb, alpha)
    a = _alphas(alpha)[:, None]                                  # (S, 1)
    return (np.sin((1.0 - a) * theta) * za + np.sin(a * theta) * zb) / np.sin(theta)  # (S, L)


def interpolation_path(za: np.ndarray, zb: np.ndarray, steps: int, spherical: bool = False) -> np.ndarray:
    """``steps`` codes from zA to zB (both included), alpha = 0, 1/(steps-1), ..., 1: (steps, L)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps (its two ends), got {steps}")
    alpha = np.linspace(0.0, 1.0, steps)                         # (S,)
    return (slerp if spherical else lerp)(za, zb, alpha)         # (S, L)
