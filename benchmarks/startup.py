"""Start-up time (cold: compiling every kernel; warm: loading them from Numba's cache) and peak memory.

Each is measured in a fresh Python process: the memory run loads MNIST, trains the
reference conv VAE for some steps and evaluates the test set, as an epoch of
``scratchvae train --model conv`` does.
"""
from __future__ import annotations

import os
import tempfile

from fresh import run_python

_FIRST_STEP = """
import time, json
t = time.perf_counter()
import numpy as np, scratchvae as sv
model = sv.build_model("conv")
x = (np.random.default_rng(0).random((8, 1, 28, 28)) < 0.3).astype(np.float32)
model.loss(x); model.backward(input_grad=False); sv.Adam(model.parameters()).step()
print(json.dumps({"seconds": time.perf_counter() - t}))
"""

_MEMORY = """
import json, numpy as np, scratchvae as sv
from scratchvae.data import load_split, binarize, static_test_binarization
from scratchvae.parallel import DataParallel
from scratchvae.train import evaluate
x = load_split("train").images
model = sv.build_model("conv"); opt = sv.Adam(model.parameters()); rng = np.random.default_rng(0)
parallel = DataParallel(model)  # the workers `scratchvae train` uses, each with its own buffers
for i in range({steps}):
    xb = binarize(x[(i * 128) % 59904:(i * 128) % 59904 + 128], rng)
    parallel.train_step(xb, opt)
evaluate(model, static_test_binarization(load_split("test").images), parallel=parallel)  # as each epoch ends
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across
# fork + exec, so it would report the (larger) benchmark process that started this one.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(json.dumps({{"peak_rss_mb": int(hwm.split()[1]) / 1024}}))
"""


def startup_report(memory_steps: int = 200) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = run_python(_FIRST_STEP, env)["seconds"]
        warm = run_python(_FIRST_STEP, env)["seconds"]
    mem = run_python(_MEMORY.format(steps=memory_steps))["peak_rss_mb"]  # this process's environment
    return {"cold_s": cold, "warm_s": warm, "peak_rss_mb": mem, "memory_steps": memory_steps}
