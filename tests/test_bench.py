"""The benchmark (benchmarks/bench.py) runs, reports what it promises, and copes without torch."""
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchvae.parallel import DataParallel, workers_refusal
import scratchvae as sv

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the harness's modules, as `python benchmarks/bench.py` finds them
import bench  # noqa: E402
from bench import main  # noqa: E402
from floor import ProductsAlone  # noqa: E402
from gemms import layer_gemms, step_gemms  # noqa: E402

ARGS = ["--models", "mlp", "--repeats", "2", "--warmup", "1", "--inference-batch", "50"]


def test_bench_json_reports_every_figure(capsys):
    assert main(ARGS + ["--json", "--layers"]) == 0
    report = json.loads(capsys.readouterr().out)
    row = report["results"][0]
    for key in ("train_ms", "train_images_per_s", "mnist_epoch_s", "gflops", "fraction_of_peak",
                "inference_ms", "inference_images_per_s"):
        assert row[key] > 0, key
    assert report["gemm_peak_gflops"] > 0
    assert [layer["layer"] for layer in row["layers"]][:2] == ["encoder.0", "encoder.1"]
    # the MLP's encoder.0 is Flatten; encoder.1, its first Linear, is timed without dx, as training runs it
    assert [layer["layer"] for layer in row["layers"] if not layer["input_grad"]] == ["encoder.1"]
    linear, relu = row["layers"][1], row["layers"][2]
    assert linear["gemm_forward_ms"] > 0 and linear["gemm_backward_ms"] > 0  # its products, timed alone
    assert relu["gemm_forward_ms"] is None and relu["gemm_backward_ms"] is None


def test_bench_counts_the_best_gemm_peak_of_the_run(capsys, monkeypatch):
    """The peak is measured before and after each model; the best one is the peak every %peak uses."""
    samples = iter([150.0, 300.0, 200.0])
    monkeypatch.setattr(bench, "gemm_peak_gflops", lambda: next(samples))
    two_models = ["mlp,mlp" if a == "mlp" else a for a in ARGS]  # so three peaks: before, between, after
    assert main(two_models + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gemm_peak_samples"] == [150.0, 300.0, 200.0]
    assert report["gemm_peak_gflops"] == 300.0
    for row in report["results"]:
        assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / 300.0)


def test_bench_layers_table_says_what_the_products_take(capsys):
    assert main(ARGS + ["--layers"]) == 0
    out = capsys.readouterr().out
    assert "in brackets its matrix products alone" in out
    assert "all layers:" in out and "of which matrix products alone" in out


def test_bench_says_so_when_torch_is_absent(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert main(ARGS + ["--vs-torch"]) == 0
    out = capsys.readouterr().out
    assert "torch is not installed" in out
    assert "mlp" in out and "ratio" not in out


def test_bench_against_torch_prints_ratios(capsys):
    pytest.importorskip("torch")
    assert main(ARGS + ["--vs-torch"]) == 0
    out = capsys.readouterr().out
    assert "ratio" in out
    assert "x PyTorch's)" in out  # the floor of the products, against PyTorch's whole step


def layer_gemm_flops(layer, in_shape, out_shape):
    """(forward, backward) FLOPs of a layer's products."""
    gemms = layer_gemms(layer, in_shape, out_shape)
    forward = sum(g.flops for g in gemms if g.role == "forward")
    return forward, sum(g.flops for g in gemms) - forward


def test_gemm_flop_counts():
    assert layer_gemm_flops(sv.Linear(10, 5), (4, 10), (4, 5)) == (400, 800)
    conv = sv.Conv2d(3, 8, 3, padding=1)
    assert layer_gemm_flops(conv, (2, 3, 5, 5), (2, 8, 5, 5))[0] == 2 * 2 * 8 * 25 * 27
    convt = sv.ConvTranspose2d(8, 3, 3, padding=1)
    assert layer_gemm_flops(convt, (2, 8, 5, 5), (2, 3, 5, 5))[0] == 2 * 2 * 8 * 25 * 27
    assert layer_gemm_flops(sv.ReLU(), (2, 3), (2, 3)) == (0, 0)
    # a model's first layer, in training: no dx product
    assert [g.role for g in layer_gemms(conv, (2, 3, 5, 5), (2, 8, 5, 5), input_grad=False)] == ["forward", "dweight"]


@pytest.mark.parametrize("layer,x_shape", [
    (sv.Linear(10, 5), (4, 10)),
    (sv.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 7, 7)),
    (sv.ConvTranspose2d(8, 3, 3, stride=2, padding=1, output_padding=1), (2, 8, 4, 4)),
])
def test_gemm_specs_are_the_layers_products(layer, x_shape):
    """Each spec's product has the shape and operand layouts of the product the layer runs."""
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    out = layer.forward(x)
    layer.backward(np.ones_like(out))
    gemms = {g.role: g for g in layer_gemms(layer, x.shape, out.shape)}
    assert sorted(gemms) == ["dweight", "dx", "forward"]
    if isinstance(layer, sv.Linear):
        forward = (x.shape[0], layer.out_features)                 # y = x @ weight.T
    elif isinstance(layer, sv.ConvTranspose2d):
        forward = (x.shape[0] * x.shape[2] * x.shape[3], 9 * layer.out_channels)  # cols = x_rows @ w_rows: a row per input pixel
    else:
        forward = (out.shape[0] * out.shape[2] * out.shape[3], out.shape[1])  # one row per output pixel
    assert (gemms["forward"].m, gemms["forward"].n) == forward
    assert gemms["dweight"].m * gemms["dweight"].n == layer.weight.data.size  # one entry per weight
    assert gemms["dx"].m * gemms["dx"].n == (gemms["forward"].m * gemms["forward"].k)  # dx has the input's rows
    for g in gemms.values():
        a, b = g.operands(np.random.default_rng(0))
        assert (a @ b).shape == (g.m, g.n)
        assert a.flags.f_contiguous == g.a_t and b.flags.f_contiguous == g.b_t  # stored transposed: read as .T


def test_bench_malloc_tuning_is_reported(capsys):
    assert main(ARGS + ["--malloc-tuned", "--json"]) == 0
    note = json.loads(capsys.readouterr().out)["malloc"]
    if platform.libc_ver()[0] == "glibc":        # mallopt exists there and takes both settings
        assert note.startswith("malloc tuned for the whole process")
    else:
        assert note.startswith("malloc tuning: not available here")
    assert main(ARGS + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["malloc"].startswith("malloc as installed")


def test_bench_sets_torch_threads(capsys):
    """In this process (the report's note) and in the fresh one that times the model (its row)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        assert main(ARGS + ["--vs-torch", "--torch-threads", "1", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert "1 threads" in report["torch"]
        assert report["results"][0]["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_bench_times_each_model_in_a_fresh_process(capsys):
    """By default every model is timed in a process of its own (malloc as installed for each);
    --in-process times them all here."""
    import os
    assert main(["--models", "mlp,mlp", "--repeats", "2", "--warmup", "1", "--inference-batch", "20",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    pids = [row["pid"] for row in report["results"]]
    assert os.getpid() not in pids and len(set(pids)) == 2
    assert report["processes"].startswith("each model timed in a fresh process")
    assert main(["--models", "mlp,mlp", "--repeats", "2", "--warmup", "1", "--inference-batch", "20",
                 "--json", "--in-process"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["pid"] for row in report["results"]] == [os.getpid()] * 2
    assert "--in-process" in report["processes"]


def test_fresh_process_is_set_up_as_the_run(monkeypatch):
    """The request carries every option (not the handler function); the child tunes malloc
    when the run does, then times the model with those options."""
    import argparse
    from fresh import request_for

    args = argparse.Namespace(models="mlp", batch_size=8, inference_batch=10, repeats=2, warmup=1, block=5,
                              workers=None, layers=False, torch_threads=None, malloc_tuned=True,
                              in_process=False, startup=False, json=True, nll=None, nll_images=1000,
                              nll_repeats=3, nll_models="mlp,conv", func=print)
    request = request_for("mlp", args, torch_ok=False)
    assert request["model"] == "mlp" and request["torch_ok"] is False
    assert request["args"] == {k: v for k, v in vars(args).items() if k != "func"}
    json.dumps(request)  # what travels to the fresh process
    tuned = []
    monkeypatch.setattr(bench, "tune_malloc", lambda: tuned.append(True))
    row = bench.measure_request(json.loads(json.dumps(request)))
    assert tuned == [True]
    assert row["model"] == "mlp" and row["batch_size"] == 8 and row["inference_batch"] == 10


def test_fresh_process_failure_is_an_error_not_a_row(capsys):
    from fresh import run_python
    with pytest.raises(RuntimeError, match="exit 3"):
        run_python("import sys; print('partial', file=sys.stderr); sys.exit(3)")
    assert "partial" in capsys.readouterr().err   # its own message is shown
    assert run_python("print('noise'); print('{\"a\": 1}')") == {"a": 1}


def test_alternating_turns_run_blocks_back_to_back(monkeypatch):
    """Each fn gets `repeats` timed calls in turns of `block`, each turn after one untimed call."""
    import timing

    # seconds each call "takes", in call order: warm-up, then per turn one untimed call and the timed ones
    slow, a_timed = 9.0, [0.001, 0.003, 0.002]
    log, durations = [], {"a": iter([slow, slow] + a_timed + [slow] + a_timed + [slow, 0.002]),
                          "b": iter([slow, slow] + [0.010] * 3 + [slow] + [0.010] * 3 + [slow, 0.010])}

    def make(name):
        def fn():
            log.append(name)
            return next(durations[name])
        return fn

    monkeypatch.setattr(timing, "_seconds", lambda fn: fn())  # the fn's return value is its "time"
    monkeypatch.setattr(timing.time, "sleep", lambda s: None)
    a_ms, b_ms = timing.alternating_ms([make("a"), make("b")], repeats=7, warmup=1, block=3)
    # warm-up, then turns of 1 untimed + 3, 3 and finally 1 timed calls
    assert "".join(log) == "a" + "b" + "aaaa" + "bbbb" + "aaaa" + "bbbb" + "aa" + "bb"
    assert b_ms == pytest.approx(10.0)
    assert a_ms == pytest.approx(2.0)  # median of the 7 timed calls; warm-up and untimed ones (9 s) excluded


def test_layer_breakdown_feeds_layers_the_steps_memory_layout():
    """A conv layer's output is channels-last; the per-layer timing must feed the next layer that, not NCHW."""
    from bench import _random_like
    import numpy as np

    model = sv.Autoencoder(sv.Sequential(sv.Conv2d(1, 4, 3), sv.ReLU(), sv.Conv2d(4, 2, 3)), sv.Flatten(), 2, "mse")
    rows = model.trace(np.zeros((2, 1, 8, 8), np.float32), np.zeros((2, 2), np.float32))
    assert [name for name, *_ in rows] == ["encoder.0", "encoder.1", "encoder.2", "decoder"]  # state_dict's names
    relu_in = rows[1][2]
    assert relu_in.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last, as Conv2d returns it
    fed = _random_like(relu_in, seed=0)
    assert fed.strides == relu_in.strides and fed.dtype == np.float32 and fed.std() > 0.5


def test_bench_runs_the_workers_train_would(capsys):
    from scratchvae._threads import blas_thread_control
    if blas_thread_control() is None:
        pytest.skip("NumPy's BLAS threads cannot be set: every model runs on one worker")
    assert main(["--models", "mlp,conv", "--repeats", "2", "--warmup", "1", "--batch-size", "8",
                 "--inference-batch", "10", "--json"]) == 0
    workers = {row["model"]: row["workers"] for row in json.loads(capsys.readouterr().out)["results"]}
    assert workers == {"mlp": 1, "conv": sv.parallel.default_workers(sv.build_model("conv"))}
    assert main(["--models", "conv", "--workers", "3", "--repeats", "2", "--warmup", "1",
                 "--batch-size", "8", "--inference-batch", "10"]) == 0
    assert "conv         3" in capsys.readouterr().out


def test_page_faults_count_memory_fresh_from_the_os():
    """A call that maps new memory each time faults; one that reuses a buffer does not."""
    from timing import minor_faults_per_call
    if minor_faults_per_call(lambda: None) is None:
        pytest.skip("getrusage is not available here")
    size = 64 << 20          # above glibc's largest mmap threshold (32 MB): a fresh mmap every call
    buffer = np.ones(size, np.uint8)  # written: its pages are mapped (np.zeros would map them at first use)
    fresh = minor_faults_per_call(lambda: np.ones(size, np.uint8), calls=3)
    reused = minor_faults_per_call(lambda: buffer.fill(1), calls=3)
    assert fresh >= 16 and reused < 0.1 * fresh   # >= 16: NumPy asks for 2 MB huge pages; 64 MB is 32


def test_bench_reports_page_faults_per_step(capsys):
    assert main(ARGS + ["--json"]) == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["page_faults_per_step"] is None or row["page_faults_per_step"] >= 0
    assert main(ARGS) == 0
    out = capsys.readouterr().out
    assert row["page_faults_per_step"] is None or "page faults per training step" in out


@pytest.mark.parametrize("arch,workers,per_pass", [("mlp", 1, None), ("conv", 2, None), ("keras", 2, 3)])
def test_products_alone_runs_every_product_of_the_step_once(arch, workers, per_pass, monkeypatch):
    """The floor runs the whole batch's products (training: forward, dweight, dx; inference:
    forward), each once, cut as the step cuts the batch, and nothing else."""
    sv.manual_seed(0)
    model = sv.build_model(arch, rng=np.random.default_rng(0))
    if workers > 1 and workers_refusal(model) is not None:
        pytest.skip(workers_refusal(model))
    x = (np.random.default_rng(0).random((10, 1, 28, 28)) < 0.3).astype(np.float32)
    parallel = DataParallel(model, workers, images_per_pass=per_pass)
    whole = step_gemms(model, x)
    for training, roles in ((True, {"forward", "dweight", "dx"}), (False, {"forward"})):
        floor = ProductsAlone(model, x, parallel, training=training)
        assert floor.jobs == parallel.plan(x)
        assert floor.flops == sum(g.flops for g in whole if g.role in roles)
        calls = []
        real_dot = np.dot
        monkeypatch.setattr(np, "dot", lambda a, b, out: calls.append((a.shape, b.shape)) or real_dot(a, b, out=out))
        floor()
        monkeypatch.undo()
        expected = [((g.m, g.k), (g.k, g.n)) for k, passes in floor.jobs for part in passes
                    for g in floor.gemms[k, part.stop - part.start]]
        assert sorted(calls) == sorted(expected)
        assert sum(2 * a[0] * a[1] * b[1] for a, b in calls) == floor.flops


def test_bench_reports_the_products_alone(capsys):
    assert main(ARGS + ["--json"]) == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert 0 < row["products_ms"] and 0 < row["inference_products_ms"]
    assert main(ARGS) == 0
    assert "matrix products alone, run as the step and inference run them" in capsys.readouterr().out


def test_an_unknown_layer_type_is_a_clear_error():
    """A layer gemms.py does not know might run products: refusing it beats counting none."""
    class Swish(sv.nn.Module):
        pass
    with pytest.raises(TypeError, match="does not know the matrix products of Swish"):
        layer_gemms(Swish(), (2, 3), (2, 3))
    with pytest.raises(TypeError, match="of Sequential"):  # a nested Sequential is one layer to trace
        layer_gemms(sv.Sequential(sv.Linear(3, 3)), (2, 3), (2, 3))


def test_fresh_processes_find_the_harness_and_this_scratchvae_from_any_directory(tmp_path, monkeypatch):
    """A child runs with the harness and this process's scratchvae first on its path, even where
    the working directory holds another scratchvae (`python -c` puts it ahead of PYTHONPATH)."""
    from fresh import run_python
    (tmp_path / "scratchvae").mkdir()
    (tmp_path / "scratchvae" / "__init__.py").write_text("raise ImportError('the wrong scratchvae')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    found = run_python("import json, bench, scratchvae\n"
                       "print(json.dumps({'bench': bench.__file__, 'scratchvae': scratchvae.__file__}))")
    assert Path(found["bench"]) == BENCHMARKS / "bench.py"
    assert Path(found["scratchvae"]) == Path(sv.__file__).resolve()


def test_bench_runs_as_a_script_from_another_directory(tmp_path):
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench.py"), "--models", "mlp", "--repeats", "2",
                           "--warmup", "1", "--batch-size", "8", "--inference-batch", "10", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)["results"][0]
    assert row["model"] == "mlp" and row["train_ms"] > 0


def test_the_package_imports_nothing_from_the_harness():
    """benchmarks/ and the tests' torch twin use scratchvae; never the other way round."""
    import ast
    harness = {p.stem for p in BENCHMARKS.glob("*.py")} | {"benchmarks", "torch_twin"}
    root = Path(sv.__file__).resolve().parent.parent
    found = []
    for source in sorted((root / "scratchvae").rglob("*.py")):
        package = list(source.relative_to(root).parent.parts)        # ["scratchvae", "nn"]
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):                     # `from ..x import y`: absolute
                base = package[:len(package) - node.level + 1] if node.level else []
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                continue
            found += [f"{source.relative_to(root)}:{node.lineno} imports {name}" for name in names
                      if name.split(".")[0] in harness or (name + ".").startswith("scratchvae.bench.")]
    assert not found, found


def test_torch_nll_is_ours_line_for_line():
    """Same weights, same noise: the PyTorch twin of the estimator gives our numbers, to the
    networks' float32 rounding (the logits differ in the last bits, ~1e-6 relative, and a
    log-weight sums 784 of them: a few 1e-5 nats; 1e-3 still catches any term left out, each of
    which is nats in size). Both the many-images and the split-samples chunkings."""
    pytest.importorskip("torch")
    from nll import test_images, torch_importance_sampled_nll
    from torch_twin import TorchVAE
    model = sv.build_model("mlp", rng=np.random.default_rng(0))
    x = test_images(6)
    tmodel = TorchVAE(model).eval()
    for k, batch_size in ((4, 10), (7, 3)):
        ours = sv.evaluation.importance_sampled_nll(model, x, k, batch_size, rng=np.random.default_rng(2),
                                                    progress=False)
        theirs = torch_importance_sampled_nll(tmodel, model.latent_dim, x, k, batch_size, np.random.default_rng(2))
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-3)
        assert np.all(ours > 100)                                 # untrained: hundreds of nats per image


def test_bench_times_the_nll_against_torch(capsys):
    pytest.importorskip("torch")
    assert main(ARGS + ["--vs-torch", "--nll", "3", "--nll-images", "4", "--nll-repeats", "1", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["nll_k"] == 3 and row["nll_images"] == 4
    assert row["nll_s"] > 0 and row["torch_nll_s"] > 0
    assert row["nll_ratio"] == pytest.approx(row["nll_s"] / row["torch_nll_s"])
    assert row["nll_max_abs_diff"] < 1e-3
    assert main(ARGS + ["--vs-torch", "--nll", "3", "--nll-images", "4", "--nll-repeats", "1"]) == 0
    assert "importance-sampled nll, K = 3 on 4 test images" in capsys.readouterr().out


def test_bench_times_the_nll_without_torch(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(ARGS + ["--in-process", "--nll", "2", "--nll-images", "3", "--nll-repeats", "1", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["nll_s"] > 0 and "torch_nll_s" not in row


def test_bench_times_the_nll_of_the_nll_models_only(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(ARGS + ["--in-process", "--nll", "2", "--nll-images", "3", "--nll-repeats", "1",
                        "--nll-models", "conv", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["model"] == "mlp" and "nll_s" not in row
