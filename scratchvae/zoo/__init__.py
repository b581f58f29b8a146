"""The bug zoo: mistakes people keep making in VAE code, each one a switch (``scratchvae zoo BUG``).

    pieces.py     the wrong pieces, each a subclass of the right one with one line changed
    bugs.py       the registry: the wrong line, the right line, how to build a VAE with the bug
    detectors.py  the gradient check and the meaning tests on a tiny model, with computed verdicts
    runner.py     a short training of the buggy and the correct model, and the detectors that need it
    figures.py    one figure per run
docs/zoo.md shows each bug's table and figure.
"""
from .bugs import BUGS, Bug, get_bug
from .runner import Settings, ZooRun, run_bug

__all__ = ["BUGS", "Bug", "Settings", "ZooRun", "get_bug", "run_bug"]
