"""benchmarks/report.py: the benchmark's text tables line up whatever the variants' names."""
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the harness's modules, as `python benchmarks/bench.py` finds them
from report import print_report  # noqa: E402


def _row(model: str, train_ms: float) -> dict:
    return {"model": model, "workers": 2, "batch_size": 128, "inference_batch": 1000, "train_ms": train_ms,
            "train_images_per_s": 128e3 / train_ms, "mnist_epoch_s": 469 * train_ms / 1e3, "gflops": 200.0,
            "fraction_of_peak": 0.4, "torch_train_ms": 2 * train_ms, "train_ratio": 0.5, "inference_ms": 40.0,
            "inference_images_per_s": 25000.0, "torch_inference_ms": 80.0, "inference_ratio": 0.5,
            "page_faults_per_step": None, "products_ms": 10.0, "inference_products_ms": 30.0,
            "products_over_torch": 0.4, "inference_products_over_torch": 0.3,
            "nll_s": 1.5, "nll_k": 100, "nll_images": 100, "nll_batch_size": 4096}


def test_columns_line_up_for_long_variant_names(capsys):
    report = {"machine": "x86_64, 2 cores", "numpy": "2", "gemm_peak_gflops": 480.0, "gemm_peak_samples": [470, 480],
              "torch": "torch", "malloc": "malloc", "processes": "fresh", "protocol": "turns",
              "results": [_row("conv", 14.1), _row("conv-iwae5", 39.7), _row("mlp", 1.2)]}
    print_report(report)
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("model"))):][:4]
    # every row's separator and last character sit under the header's: the columns are aligned
    assert len({line.index(" | ") for line in table}) == 1, table
    assert len({len(line) for line in table}) == 1, table
    for block in ("  conv ", "  conv-iwae5 ", "  mlp "):
        starts = [line for line in lines if line.startswith(block)]
        assert len(starts) == 2  # the products-alone line and the nll line
    products = [line for line in lines if "ms (ours takes" in line]
    assert len({line.index(" step ") for line in products}) == 1, products
    nll = [line for line in lines if line.rstrip().endswith(" s") and line.startswith("  ")]
    assert len(nll) == 3 and len({line.index(" s") for line in nll}) == 1, nll
