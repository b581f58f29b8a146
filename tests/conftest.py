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
