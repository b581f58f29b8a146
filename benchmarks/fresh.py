"""Measure in a fresh Python process: each model of a benchmark run, start-up, peak memory.

Why each model gets its own process: glibc's malloc adapts to what a process has done.
It serves allocations above its mmap threshold (128 KB at start) with a fresh mmap, and
every time such a block is freed it raises the threshold to that block's size (up to
32 MB), so that later allocations of that size come from the heap, with no page faults.
A process that has once freed a large block therefore runs as if malloc had been tuned.
In one process, the batch-1000 inference of the models timed first (arrays of up to
25 MB) did that for the models timed after them: PyTorch's keras-io step, timed third,
took 47 ms "as installed" in the three-model run and 61 ms when timed alone (the same
session; its malloc-tuned time is ~47 ms). So each model is timed in a process of its
own, in which both libraries start from malloc as installed, and the order of --models
changes nothing. The two libraries still share the process, taking turns, so both see
the same machine load (and each other's allocations: that is the same run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import scratchvae

_MEASURE_MODEL = """
import json, sys
from bench import measure_request
print(json.dumps(measure_request(json.load(sys.stdin))))
"""

# What the new interpreter imports first, from any working directory: this harness (bench,
# fresh, ...) and the scratchvae this process measures. sys.path, not PYTHONPATH: `python -c`
# puts the working directory ahead of PYTHONPATH, and a scratchvae there would win.
_CHILD_PATH = [str(Path(__file__).resolve().parent), str(Path(scratchvae.__file__).resolve().parent.parent)]


def run_python(code: str, env: dict | None = None, stdin: str | None = None) -> dict:
    """Run code in a new interpreter (this one's executable and environment unless env is
    given; _CHILD_PATH first on its sys.path) and return the JSON object on the last line
    of its standard output. Its standard error passes through; a failure raises
    RuntimeError with it."""
    # scratchvae imported before anything else: bench.py puts the checkout it sits in on the path for a
    # script run from a clone, and the child must measure this process's scratchvae (an installed one too)
    code = f"import sys; sys.path[:0] = {_CHILD_PATH!r}\nimport scratchvae\n" + code
    done = subprocess.run([sys.executable, "-c", code], env=os.environ if env is None else env,
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"the measuring process failed (exit {done.returncode}); its errors are above")
    return json.loads(done.stdout.strip().splitlines()[-1])


def request_for(model: str, args: argparse.Namespace, torch_ok: bool) -> dict:
    """What a fresh process needs to time `model` as this run would: the command's options
    (the plain values; not the handler function) and whether to time PyTorch too."""
    options = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))}
    return {"model": model, "torch_ok": torch_ok, "args": options}


def bench_model_in_fresh_process(model: str, args: argparse.Namespace, torch_ok: bool) -> dict:
    """bench_model(model, args, torch_ok), run in a new Python process (see the module docstring)."""
    return run_python(_MEASURE_MODEL, stdin=json.dumps(request_for(model, args, torch_ok)))
