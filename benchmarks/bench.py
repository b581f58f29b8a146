"""How fast a training step and inference run, optionally against PyTorch.

Run from a clone (any working directory; it measures the scratchvae beside it)::

    python benchmarks/bench.py --vs-torch        # --help for every option

Every figure is measured in the run that prints it: medians of repeated timings
after warm-up; with --vs-torch the identical PyTorch model (same weights, the parity
tests' twin: tests/torch_twin.py) is timed in the same process, the two taking turns
of a few back-to-back steps (see timing.alternating_ms), so both see the same machine
load. Each model is timed in a fresh process of its own (fresh.py says why: malloc
remembers what a process did), unless --in-process is given. Beside each step and
inference, the same run times their matrix products alone, split as the step splits
the batch: the floor NumPy's BLAS sets under them (floor.py). The text report is
report.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The package beside this folder (ahead of any other installed copy: gemms.py and floor.py
# read its layers and DataParallel's plan), and the tests' PyTorch twin.
for _path in (REPO / "tests", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(1, str(_path))

import numpy as np  # noqa: E402

from scratchvae.commands.argtypes import positive_int  # noqa: E402
from scratchvae.models import ARCHITECTURES, build_model  # noqa: E402
from scratchvae.nn.init import manual_seed  # noqa: E402
from scratchvae.optim import Adam  # noqa: E402
from scratchvae.parallel import DataParallel, cpu_cores  # noqa: E402

from floor import ProductsAlone  # noqa: E402
from fresh import bench_model_in_fresh_process  # noqa: E402
from gemms import Gemm, first_trained_layer, layer_gemms  # noqa: E402
from malloc import tune_malloc  # noqa: E402
from nll import bench_nll  # noqa: E402
from report import print_report  # noqa: E402
from startup import startup_report  # noqa: E402
from timing import PAUSE_S, alternating_ms, gemm_peak_gflops, median_ms, minor_faults_per_call  # noqa: E402


MNIST_TRAIN_IMAGES = 60000
#: --models names beyond the architectures: an architecture trained another way (its objective or
#: prior), timed against the same PyTorch twin trained the same way
VARIANTS = {"conv-iwae5": ("conv", {"objective": "iwae", "iw_samples": 5}),
            "conv-vamp": ("conv", {"prior": "vamp"})}


def model_of(name: str):
    """The model --models names: an architecture as `scratchvae train` builds it, or a VARIANTS entry."""
    arch, kwargs = VARIANTS.get(name, (name, {}))
    return build_model(arch, rng=np.random.default_rng(0), **kwargs), ARCHITECTURES[arch][1]


def _batch(shape: tuple, n: int, seed: int = 0) -> np.ndarray:
    """Binarized random images: the same statistics a training batch has."""
    return (np.random.default_rng(seed).random((n,) + shape) < 0.3).astype(np.float32)


def _train_step(model, optimizer, x, parallel: DataParallel):
    """One step as train_epoch runs it (no clipping): the batch on parallel's workers, Adam in the reduce."""
    def step():
        parallel.train_step(x, optimizer)
    return step


def _torch_steps(model, x, x_inf):
    import torch

    from torch_twin import TorchVAE
    tmodel = TorchVAE(model)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    tx, tx_inf = torch.from_numpy(x), torch.from_numpy(x_inf)

    def step():
        topt.zero_grad(set_to_none=True)
        loss, _ = tmodel.loss(tx)
        loss.backward()
        topt.step()

    def infer():
        with torch.no_grad():
            tmodel.eval()
            return tmodel.reconstruct(tx_inf)
    return step, infer


def bench_model(arch: str, args: argparse.Namespace, torch_ok: bool) -> dict:
    """One row of the report; its fraction_of_peak is set by run, once the run's peak is known."""
    manual_seed(0)
    model, shape = model_of(arch)
    x, x_inf = _batch(shape, args.batch_size), _batch(shape, args.inference_batch, seed=1)
    parallel = DataParallel(model, args.workers)                 # None: default_workers(model), as train
    step = _train_step(model, Adam(model.parameters()), x, parallel)

    def infer():
        model.eval()
        out = parallel.reconstruct(x_inf)
        model.train()
        return out

    def timed(ours, theirs, products, repeats: int, warmup: int) -> tuple:
        """Median ms of ours, of PyTorch's twin (None without it) and of the products alone."""
        if theirs is None:
            return median_ms(ours, repeats, warmup), None, median_ms(products, repeats, 1)
        return tuple(alternating_ms([ours, theirs, products], repeats, warmup, args.block))

    t_step, t_infer = _torch_steps(model, x, x_inf) if torch_ok else (None, None)
    products = ProductsAlone(model, x, parallel)                 # the floor under step (see floor.py)
    ours_step, torch_step, products_ms = timed(step, t_step, products, args.repeats, args.warmup)
    # Built only now: building it runs the model on inference-sized passes, whose freed arrays
    # would raise malloc's thresholds for PyTorch's steps had it been built before them (fresh.py).
    products_inf = ProductsAlone(model, x_inf, parallel, training=False)
    ours_inf, torch_inf, products_inf_ms = timed(infer, t_infer, products_inf, max(3, args.repeats // 4), 1)
    flops = products.flops                                       # == step_gemms(model, x) of the whole batch
    row = {
        "model": arch, "workers": parallel.workers, "batch_size": args.batch_size,
        "parameters": model.num_parameters(),
        "train_ms": ours_step, "train_images_per_s": args.batch_size / ours_step * 1e3,
        "mnist_epoch_s": MNIST_TRAIN_IMAGES / args.batch_size * ours_step / 1e3,
        "gemm_gflop_per_step": flops / 1e9, "gflops": flops / ours_step / 1e6,
        "inference_batch": args.inference_batch, "inference_ms": ours_inf,
        "inference_images_per_s": args.inference_batch / ours_inf * 1e3,
        "products_ms": products_ms, "inference_products_ms": products_inf_ms,
        "page_faults_per_step": minor_faults_per_call(step),     # after the timing: malloc's state then
        "pid": os.getpid(),                                      # the process that measured this row
    }
    if torch_ok:
        import torch
        row.update({"torch_threads": torch.get_num_threads(),
                    "torch_page_faults_per_step": minor_faults_per_call(t_step),
                    "torch_train_ms": torch_step, "train_ratio": ours_step / torch_step,
                    "torch_inference_ms": torch_inf, "inference_ratio": ours_inf / torch_inf,
                    "products_over_torch": products_ms / torch_step,
                    "inference_products_over_torch": products_inf_ms / torch_inf})
    if args.layers:
        row["layers"] = layer_breakdown(model, x, args.repeats)
    if args.nll and arch in args.nll_models.split(","):
        row.update(bench_nll(arch, args.nll, args.nll_images, args.inference_batch, args.nll_repeats, torch_ok))
    return row


def measure_request(request: dict) -> dict:
    """The fresh process's side of fresh.bench_model_in_fresh_process: set up as the run
    did (malloc tuning, PyTorch's threads), then bench_model."""
    args = argparse.Namespace(**request["args"])
    _set_up(args, vs_torch=request["torch_ok"])
    return bench_model(request["model"], args, request["torch_ok"])


def layer_breakdown(model, x: np.ndarray, repeats: int) -> list[dict]:
    """Forward and backward ms of every layer on the shapes of one training step, and of
    its matrix products alone (same shapes and layouts, see gemms.py): the difference is
    what the layer spends around BLAS.

    The encoder's first layer with parameters is timed as training runs it: backward_params.
    """
    rows, first = [], first_trained_layer(model)
    z = np.random.default_rng(0).standard_normal((x.shape[0], model.latent_dim)).astype(np.float32)
    for name, layer, x_in, out in model.trace(x, z):
        xin, dout = _random_like(x_in, seed=1), _random_like(out, seed=2)  # the step's memory layouts
        fwd = median_ms(lambda: layer.forward(xin), repeats, 1)
        layer.forward(xin)
        input_grad = layer is not first
        backward = layer.backward if input_grad else layer.backward_params
        bwd = median_ms(lambda: backward(dout), repeats, 1)
        gemms = layer_gemms(layer, x_in.shape, out.shape, input_grad=input_grad)
        gemm_ms = {g.role: _gemm_ms(g, repeats) for g in gemms}
        rows.append({"layer": name, "type": repr(layer).split("\n")[0],
                     "out_shape": list(out.shape), "forward_ms": fwd, "backward_ms": bwd,
                     "gemm_forward_ms": gemm_ms.get("forward"),   # None: the layer has no products
                     "gemm_backward_ms": sum(gemm_ms.values()) - gemm_ms["forward"] if gemms else None,
                     "input_grad": input_grad})
    model.zero_grad()
    return rows


def _gemm_ms(gemm: Gemm, repeats: int) -> float:
    a, b = gemm.operands(np.random.default_rng(3))
    return median_ms(lambda: a @ b, repeats, 1)


def _random_like(a: np.ndarray, seed: int) -> np.ndarray:
    """Standard normal float32 values in an array with a's shape and memory layout."""
    out = np.empty_like(a, dtype=np.float32)                     # keeps a's strides (order='K')
    out[...] = np.random.default_rng(seed).standard_normal(a.shape)
    return out


def _set_up(args: argparse.Namespace, vs_torch: bool) -> tuple[str, bool, str]:
    """Set up this process as the run asks: malloc tuned under --malloc-tuned, PyTorch loaded
    with its thread count if vs_torch. Returns (malloc note, whether PyTorch runs, torch note)."""
    malloc_note = tune_malloc() if args.malloc_tuned else "malloc as installed (see --malloc-tuned)"
    torch_ok, torch_note = (_torch_available(args.torch_threads) if vs_torch
                            else (False, "--vs-torch not given"))
    return malloc_note, torch_ok, torch_note


def _torch_available(threads: int | None) -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch is not installed: timing scratchvae alone (pip install torch==2.13.0 to compare)"
    if threads is not None:
        torch.set_num_threads(threads)
    return True, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def _protocol(args: argparse.Namespace, torch_ok: bool) -> str:
    if not torch_ok:
        return f"timing: {args.warmup} warm-up calls, then {args.repeats} timed calls back to back"
    return (f"timing: the two libraries take turns, {args.block} back-to-back calls each, "
            f"after a {PAUSE_S * 1e3:.0f} ms pause and one untimed call (see --block)")


def _processes_note(args: argparse.Namespace) -> str:
    if args.in_process:
        return ("every model timed in this process (--in-process): "
                "a model sees the malloc state the ones before it left")
    return "each model timed in a fresh process (malloc starts as installed for every model)"


def run(args: argparse.Namespace) -> int:
    """Time every model of args.models and print the report (tables, or JSON with --json)."""
    malloc_note, torch_ok, torch_note = _set_up(args, vs_torch=args.vs_torch)
    archs = args.models.split(",")
    for arch in archs:
        if arch not in ARCHITECTURES and arch not in VARIANTS:
            raise SystemExit(f"unknown model '{arch}', choose from {sorted(ARCHITECTURES) + sorted(VARIANTS)}")
    report = {"machine": f"{platform.machine()}, {cpu_cores()} cores", "numpy": np.__version__,
              "torch": torch_note, "malloc": malloc_note, "protocol": _protocol(args, torch_ok),
              "processes": _processes_note(args), "results": []}
    # The peak is a property of the machine, and load can only lower a measurement of it, so
    # it is measured before and after every model and the best counts: one measurement taken
    # in a busy moment would inflate every %peak (one run here measured 155 and 301 GFLOP/s).
    peaks = [gemm_peak_gflops()]
    measure = bench_model if args.in_process else bench_model_in_fresh_process
    for arch in archs:
        print(f"timing {arch} ...", file=sys.stderr)
        report["results"].append(measure(arch, args, torch_ok))
        peaks.append(gemm_peak_gflops())
    report["gemm_peak_gflops"], report["gemm_peak_samples"] = max(peaks), peaks
    for row in report["results"]:
        row["fraction_of_peak"] = row["gflops"] / max(peaks)
    if args.startup:
        print("timing start-up and memory in fresh processes ...", file=sys.stderr)
        report["startup"] = startup_report()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/bench.py",
                                description="time training steps and inference (optionally against PyTorch)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default="mlp,conv,keras," + ",".join(VARIANTS),
                   help="comma-separated architectures, or variants: " + ", ".join(
                       f"{name} ({arch} with {', '.join(f'{k}={v}' for k, v in kw.items())})"
                       for name, (arch, kw) in VARIANTS.items()))
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--inference-batch", type=positive_int, default=1000)
    p.add_argument("--repeats", type=positive_int, default=30, help="timed steps per model (the median is reported)")
    p.add_argument("--warmup", type=positive_int, default=5)
    p.add_argument("--block", type=positive_int, default=5,
                   help="with --vs-torch: timed calls per turn, back to back as in a training loop "
                        "(1: single calls after an idle pause)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="threads per step, each on its share of the batch, as in `scratchvae train` "
                        "(default: one per core for the conv models, 1 for the MLP)")
    p.add_argument("--layers", action="store_true",
                   help="per-layer forward/backward breakdown (whole batch, one worker), each with its "
                        "matrix products timed alone")
    p.add_argument("--vs-torch", action="store_true", help="time the identical PyTorch model in the same run")
    p.add_argument("--torch-threads", type=positive_int, default=None,
                   help="threads for PyTorch (default: its own choice, usually one per core)")
    p.add_argument("--malloc-tuned", action="store_true",
                   help="raise glibc malloc's mmap/trim thresholds for the whole process (both libraries)")
    p.add_argument("--in-process", action="store_true",
                   help="time every model in this process instead of a fresh one each (faster to start; "
                        "but malloc's thresholds then carry over from one model to the next)")
    p.add_argument("--nll", type=positive_int, default=None, metavar="K",
                   help="also time the importance-sampled nll with K samples per image (ours against "
                        "PyTorch's with --vs-torch; chunks of --inference-batch rows; see nll.py)")
    p.add_argument("--nll-images", type=positive_int, default=1000, help="test images for --nll")
    p.add_argument("--nll-models", default="mlp,conv", help="the models of --models whose nll --nll times")
    p.add_argument("--nll-repeats", type=positive_int, default=3, help="timed estimates per library for --nll")
    p.add_argument("--startup", action="store_true", help="also measure cold/warm start and peak memory")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return p


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
