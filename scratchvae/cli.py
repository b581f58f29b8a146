"""Command line: ``scratchvae train | evaluate | sample | reconstruct | latent | interpolate | feature | explore | gradcheck | tour | zoo``.

Each command lives in its own module (scratchvae/commands/; the benchmark is benchmarks/bench.py);
this file puts them under one parser. A UsageError (bad input: scratchvae/errors.py) becomes one
line on stderr and exit 2, as argparse does with a bad flag; anything else is a bug and keeps its
traceback (exit 1).
"""
from __future__ import annotations

import argparse
import sys

from .commands import evaluate, explore, gradcheck, images, latent, tour, train, zoo
from .errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratchvae", description="Variational autoencoders in NumPy, "
                                     "every gradient written by hand.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (train, evaluate, images, latent, explore, gradcheck, tour, zoo):
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("scratchvae: interrupted", file=sys.stderr)
        return 130
    except UsageError as err:  # CheckpointError, DataFileError too
        print(f"scratchvae: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
