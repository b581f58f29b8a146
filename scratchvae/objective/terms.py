"""What an objective returns: its total and the terms it names, per-image averages over the batch."""
from __future__ import annotations

import math
from typing import NamedTuple


class Losses(NamedTuple):
    """Per-image averages over the batch: total = recon + beta * kl."""

    total: float
    recon: float
    kl: float

    def finite(self) -> bool:
        """No NaN or infinity among them (the training loop's NaN guard)."""
        return all(math.isfinite(v) for v in self)
