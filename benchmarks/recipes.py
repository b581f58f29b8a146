"""docs/recipes.md's ablation table and figure, from trained run folders (docs/recipes.md says how
each run was trained).

    python benchmarks/recipes.py time RUN ...               the quiet-machine seconds of one epoch of each
                                                            run's recipe (training and its held-out pass),
                                                            from EPOCHS fresh epochs in a scratch folder;
                                                            writes timings.json (run it on an idle machine)
    python benchmarks/recipes.py table RUN ... [--figure F] each run's held-out nll (RUN/eval.json, written by
                                                            `scratchvae evaluate RUN/best.npz --json`) against
                                                            its training minutes (its epochs x the measured
                                                            epoch time): a markdown table, and the figure

A run's minutes are its epochs times the epoch time measured on an idle machine, so runs trained
side by side (sharing the cores) still compare at the budget each would take alone.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPOCHS = 2        # timed epochs per recipe: the first carries Numba's compile and warm caches, so the
#                   figure is the second's
TIMINGS = Path("timings.json")


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def _flags(config: dict) -> list[str]:
    """The command line a run's config describes, as `scratchvae train` flags."""
    skip = {"epochs", "image_shape", "versions", "command", "preset", "workers", "trace_grads", "dataset"}
    flags = []
    for key, value in config.items():
        if key in skip or value is None or value is False:
            continue
        flags += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return flags


def epoch_seconds(run: Path) -> float:
    """Seconds of one epoch of the run's recipe, training and held-out pass, on this machine now."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", "import sys; from scratchvae.cli import main; sys.exit(main())", "train", *_flags(_config(run)), "--epochs", str(EPOCHS),
               "--out", str(Path(tmp) / "run"), "--no-progress"]
        marks = []
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
            for line in proc.stdout:
                if line.startswith("epoch "):
                    marks.append(time.perf_counter())
        if proc.returncode != 0 or len(marks) != EPOCHS:
            raise SystemExit(f"timing {run} failed: {' '.join(cmd)}")
    return marks[-1] - marks[-2]


def _recipe(config: dict) -> str:
    """The flags of a run that differ from `scratchvae train`'s defaults: what the table shows."""
    from scratchvae.commands.train_flags import DEFAULTS
    shown = {k: v for k, v in config.items() if k not in DEFAULTS or DEFAULTS[k] != v}
    return " ".join(_flags({k: v for k, v in shown.items() if k not in ("kind", "latent_dim", "seed")}))


def table(runs: list[Path], timings: dict) -> list[dict]:
    rows = []
    for run in runs:
        config, result = _config(run), json.loads((run / "eval.json").read_text())
        seconds = timings[str(run)]
        rows.append({"run": run.name, "flags": _recipe(config), "epochs": config["epochs"],
                     "epoch_s": seconds, "minutes": config["epochs"] * seconds / 60, "nll": result["nll"],
                     "stderr": result["nll_stderr"], "elbo": result["elbo"], "k": result["k"], "n": result["n"]})
    return rows


def print_table(rows: list[dict]) -> None:
    print("| run | recipe | epochs | s/epoch | minutes | nll | -ELBO |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | `{r['flags']}` | {r['epochs']} | {r['epoch_s']:.1f} | {r['minutes']:.1f} | "
              f"{r['nll']:.2f} ± {r['stderr']:.2f} | {r['elbo']:.2f} |")
    print(f"\nnll: scratchvae evaluate RUN/best.npz --k {rows[0]['k']} --n {rows[0]['n']}")


def save_figure(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for r in rows:
        ax.errorbar(r["minutes"], r["nll"], yerr=r["stderr"], fmt="o", capsize=3)
        # a label above its point, or below it when a close neighbour sits lower, so the two do not overlap
        below = any(abs(o["minutes"] - r["minutes"]) < 2 and 0 < o["nll"] - r["nll"] < 0.5 for o in rows)
        ax.annotate(r["run"], (r["minutes"], r["nll"]), textcoords="offset points", xytext=(6, -11 if below else 4),
                    fontsize=8)
    ax.set_xlabel("training minutes (epochs x the idle machine's epoch time)")
    ax.set_ylabel(f"held-out nll, nats (K = {rows[0]['k']})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/recipes.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("time", "table"))
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--timings", type=Path, default=TIMINGS)
    p.add_argument("--figure", type=Path, default=None)
    args = p.parse_args(argv)
    if args.what == "time":
        timings = json.loads(args.timings.read_text()) if args.timings.exists() else {}
        for run in args.runs:
            timings[str(run)] = epoch_seconds(run)
            print(f"{run}: {timings[str(run)]:.2f} s an epoch", file=sys.stderr)
        args.timings.write_text(json.dumps(timings, indent=2) + "\n")
        return 0
    rows = table(args.runs, json.loads(args.timings.read_text()))
    print_table(rows)
    if args.figure is not None:
        save_figure(rows, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
