"""The benchmark command runs, reports what it promises, and copes without torch."""
import json
import sys

import pytest

from scratchvae.bench.timing import layer_gemm_flops
from scratchvae.cli import main
import scratchvae as sv

ARGS = ["bench", "--models", "mlp", "--repeats", "2", "--warmup", "1", "--inference-batch", "50"]


def test_bench_json_reports_every_figure(capsys):
    assert main(ARGS + ["--json", "--layers"]) == 0
    report = json.loads(capsys.readouterr().out)
    row = report["results"][0]
    for key in ("train_ms", "train_images_per_s", "mnist_epoch_s", "gflops", "fraction_of_peak",
                "inference_ms", "inference_images_per_s"):
        assert row[key] > 0, key
    assert report["gemm_peak_gflops"] > 0
    assert [layer["layer"] for layer in row["layers"]][:2] == ["encoder.0", "encoder.1"]


def test_bench_says_so_when_torch_is_absent(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert main(ARGS + ["--vs-torch"]) == 0
    out = capsys.readouterr().out
    assert "torch is not installed" in out
    assert "mlp" in out and "ratio" not in out


def test_bench_against_torch_prints_ratios(capsys):
    pytest.importorskip("torch")
    assert main(ARGS + ["--vs-torch"]) == 0
    assert "ratio" in capsys.readouterr().out


def test_gemm_flop_counts():
    assert layer_gemm_flops(sv.Linear(10, 5), (4, 10), (4, 5)) == (400, 800)
    conv = sv.Conv2d(3, 8, 3, padding=1)
    assert layer_gemm_flops(conv, (2, 3, 5, 5), (2, 8, 5, 5))[0] == 2 * 2 * 8 * 25 * 27
    convt = sv.ConvTranspose2d(8, 3, 3, padding=1)
    assert layer_gemm_flops(convt, (2, 8, 5, 5), (2, 3, 5, 5))[0] == 2 * 2 * 8 * 25 * 27
    assert layer_gemm_flops(sv.ReLU(), (2, 3), (2, 3)) == (0, 0)


def test_bench_malloc_tuning_is_reported(capsys):
    assert main(ARGS + ["--malloc-tuned", "--json"]) == 0
    note = json.loads(capsys.readouterr().out)["malloc"]
    assert "malloc tuned" in note or "not available" in note or "refused" in note
    assert main(ARGS + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["malloc"].startswith("malloc as installed")


def test_bench_sets_torch_threads(capsys):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        assert main(ARGS + ["--vs-torch", "--torch-threads", "1"]) == 0
        assert "1 threads" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)
