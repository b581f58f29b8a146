"""argparse types that refuse bad values with a one-line message (argparse then exits 2), and the
checks of a flag against the model it is used with (a UsageError: cli.py exits 2)."""
from __future__ import annotations

import argparse
import math
from typing import Callable

from ..errors import UsageError
from ..parallel import workers_refusal


def _number(cast: Callable[[str], float], ok: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """An argparse type: ``cast(text)`` if ``ok`` of it, else 'must be <what>, got <text>'."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    parse.__name__ = what.replace(" ", "_")  # argparse names the type in its own messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "zero or a positive integer")
positive_float = _number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
non_negative_float = _number(float, lambda v: v >= 0 and math.isfinite(v), "zero or positive")


def refuse_workers(model, workers: int | None) -> None:
    """A UsageError when --workers asks for more than one worker and the model cannot be split
    (BatchNorm's batch statistics, a BLAS whose threads cannot be set): checked here, before
    DataParallel would refuse it as a library error."""
    if workers is not None and workers > 1 and (why := workers_refusal(model)) is not None:
        raise UsageError(f"--workers {workers}: this model runs on one worker only: {why}")
