"""What the page shows besides the model, computed once in NumPy from the held-out images.

    means            the posterior means mu of the first n held-out images (the scatter; an
                     autoencoder's codes)
    labels           their labels (colours of the scatter), or none
    pca              above 2 latent dimensions: the mean and first two principal directions of
                     all held-out means (the pad's axes; latent/projection.py)
    strip            a few held-out images to encode in the page and pick interpolation ends from:
                     the labels in turn (first of each label, then second of each, ...), among the
                     scattered ones, as uint8 (x * 255 rounded: exact for MNIST's 8-bit pixels)
    features         v_d = mean mu of label d - mean mu of the rest, over all held-out images
                     (latent/features.py, every batch: tolerance 0), for at most 10 labels

All codes are posterior means mu (never a sampled z), as in the latent commands. The page encodes
the image at hand itself (layers.js); these are computed once, in NumPy, for the scatter.
"""
from __future__ import annotations

import base64

import numpy as np

from ..latent.features import estimate_feature_vector, in_batches
from ..latent.projection import encode_means, pca
from ..nn.module import Module
from ..nn.page_arrays import page_array

MAX_FEATURES = 10    # feature sliders: one per label, for the most frequent labels


def uint8_b64(a: np.ndarray) -> dict:
    """{"shape", "b64"}: a uint8 array (images) as base64 text."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def strip_indices(labels: np.ndarray | None, n: int, count: int) -> np.ndarray:
    """``count`` indices among the first n, taking the labels in turn: the first image of each label
    (smallest label first), then the second of each, ...; without labels, the first ``count``."""
    if labels is None:
        return np.arange(min(n, count))
    labels = np.asarray(labels[:n]).tolist()
    seen: dict = {}
    rank = []                                                   # how many earlier images share the label
    for label in labels:
        rank.append(seen.get(label, 0))
        seen[label] = rank[-1] + 1
    order = sorted(range(len(labels)), key=lambda i: (rank[i], labels[i]))
    return np.array(order[:count], dtype=np.int64)


def feature_vectors(means: np.ndarray, labels: np.ndarray | None) -> list[dict]:
    """{"label", "vector" (L,), "n_with", "n_without"} for the MAX_FEATURES most frequent labels
    (ties: the smaller label first) that leave images on both sides."""
    if labels is None:
        return []
    values, counts = np.unique(labels, return_counts=True)
    out = []
    for label in np.sort(values[np.lexsort((values, -counts))][:MAX_FEATURES]):
        has = labels == label                                   # (N,)
        if has.all():
            continue
        # the codes are already computed: the "encoder" of each batch is the identity on them
        est = estimate_feature_vector(in_batches(lambda m: m, means, has, 1000), tolerance=0)
        out.append({"label": int(label), "vector": est.vector.tolist(), "n_with": est.n_with,
                    "n_without": est.n_without})
    return out


def page_content(model: Module, x: np.ndarray, labels: np.ndarray | None, n_scatter: int = 1000,
                 n_strip: int = 20) -> dict:
    """The JSON-ready data of the page (module docstring) for held-out images x (N, C, H, W)."""
    mu = encode_means(model, x)                                 # (N, L)
    n = min(n_scatter, len(x))
    strip = strip_indices(labels, n, n_strip)                   # (S,)
    thumbs = np.clip(np.rint(x[strip] * 255), 0, 255)           # (S, C, H, W)
    content = {
        "latent_dim": int(mu.shape[1]), "image_shape": list(x.shape[1:]), "n_held_out": len(x),
        "means": page_array(mu[:n]),
        "labels": None if labels is None else [int(v) for v in labels[:n]],
        "strip": {"index": strip.tolist(), "images": uint8_b64(thumbs)},
        "features": feature_vectors(mu, None if labels is None else np.asarray(labels)),
        "pca": None,
    }
    if mu.shape[1] > 2:
        p = pca(mu)
        content["pca"] = {"mean": p.mean.tolist(), "components": p.components[:2].tolist(),
                          "ratio": p.explained_variance_ratio[:2].tolist()}
    return content
