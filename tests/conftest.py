import numpy as np
import pytest

from scratchvae.nn.init import manual_seed


@pytest.fixture(autouse=True)
def seeded_weights():
    """Every test starts from the same initial-weight generator, whatever ran before it.

    Layers built without an explicit generator draw from nn/init.py's module-level one;
    unseeded, a test's weights (and so whether, say, a ReLU input lands within a
    finite-difference step of its kink) depended on which tests had run first.
    """
    manual_seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.1) -> np.ndarray:
    """Random values with |x| >= margin, so ReLU-style kinks are never within a finite-difference step."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def adam_steps(model, x: np.ndarray, steps: int, lr: float = 3e-3) -> dict:
    """Train ``model`` for ``steps`` full-batch Adam steps on x; its state_dict (test checkpoints)."""
    from scratchvae import Adam
    optimizer = Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x)
        model.backward(input_grad=False)
        optimizer.step()
    return model.state_dict()


def blob_images(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 'images' of one Gaussian blob each, labelled 0 (blob on the left half) or 1 (right
    half): a small labelled dataset for the command tests, (n, 28, 28) and (n,)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = rng.uniform(6, 22, (2, n, 1, 1))
    images = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)    # (n, 28, 28)
    return images.astype(np.uint8), (cx.ravel() > 14).astype(np.int64)
