"""The one error class for a user's bad input, apart from everything else.

``UsageError`` is raised where input is checked: a flag's value, a file or folder given on the
command line, a checkpoint or dataset that cannot be read. ``scratchvae`` (cli.py) prints its
message as one line and exits 2. Any other exception is a bug, in scratchvae or in the caller,
and keeps its traceback (exit 1): a NumPy broadcasting error must never look like bad input.

It subclasses ValueError, so a library caller that catches ValueError still catches it.
CheckpointError (checkpoint.py) and DataFileError (data/idx.py) are UsageErrors.
"""
from __future__ import annotations

from pathlib import Path


class UsageError(ValueError):
    """Bad input from whoever runs scratchvae (one-line message; the command line exits 2)."""


def make_folder(folder: Path, what: str) -> Path:
    """mkdir -p ``folder``, or a UsageError naming it when the file system refuses (a file in the
    way, no permission, a read-only disk): the folder is the user's choice, so is the problem."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{folder}: cannot create the {what} ({err.strerror or err})") from None
    return folder
