"""The measured tables of README.md and docs/, made again: each printed under the command that made it
and the machine it ran on, ready to paste over the old one.

    python benchmarks/tables.py speed [--runs 3]   README "Speed": bench.py --vs-torch --nll 100, each run in
                                                   fresh processes; a cell shows the range over the runs
    python benchmarks/tables.py evaluate           docs/evaluation.md: the two 10-epoch runs trained, then
                                                   evaluate --k 1000 --n 1000: numbers, time, peak memory
    python benchmarks/tables.py zoo [BUG ...]      docs/zoo.md: each bug's default run, and the table of
                                                   what catches what built from those runs (--figures
                                                   docs/figures: keep each bug's figure there)
    python benchmarks/tables.py tour               docs/tour.md: what `scratchvae tour` prints (ELBO, IWAE)

speed and evaluate time things and take minutes to an hour: run them on an otherwise idle machine.
The zoo's cheap rows and the tour are deterministic, and tests/test_zoo.py and tests/test_docs_tables.py
hold the docs to them; the trained rows are float32 training, which rounds differently elsewhere.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent / "bench.py"
MODELS = {"mlp": "MLP 784-400-20", "conv": "reference conv VAE", "keras": "keras-io conv VAE",
          "faces": "faces conv VAE (64x64, BatchNorm)"}
BUGS = ("std-exp-logvar", "logstd-mixup", "pixel-mean", "kl-dim-mean", "bce-unclamped", "iwae-mean-log",
        "iwae-unnormalised", "iwae-uniform", "vamp-unbounded")
ZOO_ROW = re.compile(r"^(\S.*?)\s{2,}(CAUGHT|not caught|n/a)\s{2,}(.*)$", re.MULTILINE)
CELL = {"CAUGHT": "**caught**", "not caught": "-", "n/a": "n/a"}
#: evaluate's peak memory: the command run in a child that reports its own maximum resident set size
_PEAK_RSS = ("import resource, sys\nfrom scratchvae.cli import main\ncode = main(sys.argv[1:])\n"
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(code)\n")


def machine() -> str:
    """The CPU, its cores, and the Python and NumPy the tables were made with."""
    cpu = platform.processor() or platform.machine()
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def made_by(command: str) -> str:
    return f"made by `{command}` on {machine()}, {datetime.date.today().isoformat()}"


def span(values: list[float], fmt: str = ".1f") -> str:
    """'4.7' when every run printed the same, else 'low-high' (the range a reader should expect)."""
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low}-{high}"


# -- speed -------------------------------------------------------------------------------------------------
def speed_table(reports: list[dict]) -> str:
    """The README's speed table from bench.py --vs-torch --json reports (one per run): a row per model."""
    lines = ["| model | step, ours / PyTorch | ratio | inference b=1000, ours / PyTorch | ratio |",
             "|---|---|---|---|---|"]
    for i, first in enumerate(reports[0]["results"]):
        rows = [report["results"][i] for report in reports]

        def cell(key: str, fmt: str = ".1f") -> str:
            return span([r[key] for r in rows], fmt)
        workers = f" ({first['workers']} workers)" if first["workers"] > 1 else ""
        lines.append(f"| {MODELS.get(first['model'], first['model'])}{workers} | {cell('train_ms')} / "
                     f"{cell('torch_train_ms')} ms | {cell('train_ratio', '.2f')}x | {cell('inference_ms')} / "
                     f"{cell('torch_inference_ms')} ms | {cell('inference_ratio', '.2f')}x |")
    nll = [(r, [report["results"][i] for report in reports]) for i, r in enumerate(reports[0]["results"])
           if "nll_s" in r]
    if nll:
        parts = [f"{MODELS.get(r['model'], r['model']).split()[0]} {span([x['nll_s'] for x in rows], '.2f')} / "
                 f"{span([x['torch_nll_s'] for x in rows], '.2f')} s ({span([x['nll_ratio'] for x in rows], '.2f')}x)"
                 for r, rows in nll]
        lines.append(f"\nThe nll (K = {nll[0][0]['nll_k']}, {nll[0][0]['nll_images']} test images), ours / PyTorch: "
                     + ", ".join(parts) + ".")
    return "\n".join(lines)


def run_speed(runs: int) -> list[dict]:
    command = [sys.executable, str(BENCH), "--vs-torch", "--json", "--nll", "100", "--repeats", "20",
               "--models", ",".join(MODELS)]
    reports = []
    for k in range(runs):
        print(f"speed: run {k + 1} of {runs} ...", file=sys.stderr)
        reports.append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
    return reports


# -- evaluate ----------------------------------------------------------------------------------------------
TRAIN = "scratchvae train --binarize dynamic --epochs 10 --seed 1 --model {model}"
EVALUATE = "scratchvae evaluate RUN/best.npz --k 1000 --n 1000"


def evaluate_table(rows: list[dict]) -> str:
    """The README's evaluate table from evaluate --json results, each with the command's wall-clock
    wall_s and its peak resident memory peak_mb added."""
    lines = [f"| run: `{TRAIN.format(model='M')}` | -ELBO (recon + KL) | nll, K = 1000 | active units | "
             f"time, peak memory |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['elbo']:.2f} ({r['recon']:.2f} + {r['kl']:.2f}) | {r['nll']:.2f} +- "
                     f"{r['nll_stderr']:.2f} | {r['active_units']} / {r['latent_dim']} | {r['wall_s']:.0f} s, "
                     f"{r['peak_mb']:.0f} MB |")
    return "\n".join(lines)


def run_evaluate(models: tuple[str, ...] = ("conv", "mlp")) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            run = Path(tmp) / model
            print(f"evaluate: training {model} (10 epochs) ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "scratchvae.cli", *TRAIN.format(model=model).split()[1:],
                            "--out", str(run), "--no-progress"], check=True, capture_output=True, cwd=tmp)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", _PEAK_RSS, "evaluate", str(run / "best.npz"), "--k", "1000",
                                   "--n", "1000", "--json", "--no-progress"], check=True, capture_output=True,
                                  text=True, cwd=tmp)
            row = json.loads(done.stdout)
            row["wall_s"] = time.perf_counter() - start
            row["peak_mb"] = int(done.stderr.strip().splitlines()[-1]) / 1024    # Linux reports kilobytes
            rows.append(row)
    return rows


# -- the zoo and the tour ------------------------------------------------------------------------------------
def zoo_table(runs: dict[str, str]) -> str:
    """docs/zoo.md's "What catches what" table from the text each `scratchvae zoo BUG` printed."""
    verdicts = {bug: ZOO_ROW.findall(text) for bug, text in runs.items()}
    detectors = [d for d, _, _ in next(iter(verdicts.values()))]
    lines = ["| detector | " + " | ".join(f"`{bug}`" for bug in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for i, detector in enumerate(detectors):
        cells = [CELL[verdicts[bug][i][1]] for bug in runs]
        lines.append(f"| {detector.replace('|', chr(92) + '|')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_zoo(bugs: tuple[str, ...], figures: Path | None = None) -> dict[str, str]:
    """Each bug's default run (its text from "zoo BUG:" to the figure's line); its figure kept in
    ``figures`` (docs/figures for docs/zoo.md) when given."""
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(figures).resolve()) if figures is not None else tmp
        for bug in bugs:
            print(f"zoo: {bug} ...", file=sys.stderr)
            done = subprocess.run([sys.executable, "-m", "scratchvae.cli", "zoo", bug, "--no-progress", "--out", out],
                                  check=True, capture_output=True, text=True, cwd=tmp)
            runs[bug] = done.stdout[done.stdout.index(f"zoo {bug}:"):done.stdout.index("figure:")].rstrip()
    return runs


#: the tours docs/tour.md shows: the command a reader types -> what it prints
TOURS = ("scratchvae tour --model mlp", "scratchvae tour --objective iwae")


def tour_text(command: str = TOURS[0]) -> str:
    """What ``command`` (one of TOURS) prints."""
    from scratchvae.tour import format_tour, run_tour
    from scratchvae.tour_iwae import run_iwae_tour
    return format_tour(run_iwae_tour() if "--objective iwae" in command else run_tour("mlp"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/tables.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="table", required=True)
    sub.add_parser("speed").add_argument("--runs", type=int, default=3, help="bench runs (default: 3)")
    sub.add_parser("evaluate")
    zoo = sub.add_parser("zoo")
    zoo.add_argument("bugs", nargs="*", default=list(BUGS))
    zoo.add_argument("--figures", type=Path, default=None, help="keep each bug's figure there (docs/figures)")
    sub.add_parser("tour")
    args = p.parse_args(argv)
    command = "python benchmarks/tables.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.table == "speed":
        reports = run_speed(args.runs)
        print(f"{made_by(command)}; {reports[0]['torch']}; {args.runs} runs of `{BENCH.name} --vs-torch "
              f"--nll 100 --repeats 20`\n\n{speed_table(reports)}")
    elif args.table == "evaluate":
        print(f"{made_by(command)}\n\n{evaluate_table(run_evaluate())}")
    elif args.table == "zoo":
        runs = run_zoo(tuple(args.bugs), args.figures)
        print(made_by(command))
        for bug, text in runs.items():
            print(f"\n`scratchvae zoo {bug}` (the default run):\n\n```\n{text}\n```")
        print(f"\n{zoo_table(runs)}")
    else:
        print(made_by(command))
        for tour in TOURS:
            print(f"\n```\n$ {tour}\n{tour_text(tour)}\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
