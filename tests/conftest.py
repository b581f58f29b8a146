import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.1) -> np.ndarray:
    """Random values with |x| >= margin, so ReLU-style kinks are never within a finite-difference step."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)
