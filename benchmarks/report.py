"""The text report of ``benchmarks/bench.py``: the tables and notes printed from its JSON."""
from __future__ import annotations


def print_report(report: dict) -> None:
    samples = report["gemm_peak_samples"]
    print(f"machine: {report['machine']}; numpy {report['numpy']}; GEMM peak {report['gemm_peak_gflops']:.0f} "
          f"GFLOP/s (float32; the best of {len(samples)} measurements in this run, before and after each "
          f"model: {min(samples):.0f}-{max(samples):.0f})")
    print(report["torch"])
    print(report["malloc"])
    print(report["processes"])
    print(report["protocol"])
    vs = report["results"] and "torch_train_ms" in report["results"][0]
    w = _name_width(report["results"])
    head = f"{'model':<{w}} {'workers':>7} {'train ms':>9} {'img/s':>8} {'s/epoch':>8} {'GFLOP/s':>8} {'%peak':>6}"
    head += f" {'torch ms':>9} {'ratio':>6}" if vs else ""
    head += f" | {'infer ms':>9} {'img/s':>8}" + (f" {'torch ms':>9} {'ratio':>6}" if vs else "")
    print(f"\ntraining step (forward + backward + Adam), batch {report['results'][0]['batch_size']}; "
          f"inference = encode + decode, batch {report['results'][0]['inference_batch']}; medians")
    print(head)
    for r in report["results"]:
        line = (f"{r['model']:<{w}} {r['workers']:7d} {r['train_ms']:9.1f} {r['train_images_per_s']:8.0f} "
                f"{r['mnist_epoch_s']:8.1f} "
                f"{r['gflops']:8.1f} {100 * r['fraction_of_peak']:5.0f}%")
        line += f" {r['torch_train_ms']:9.1f} {r['train_ratio']:5.2f}x" if vs else ""
        line += f" | {r['inference_ms']:9.1f} {r['inference_images_per_s']:8.0f}"
        line += f" {r['torch_inference_ms']:9.1f} {r['inference_ratio']:5.2f}x" if vs else ""
        print(line)
    _print_page_faults(report["results"], vs)
    _print_products(report["results"], vs)
    _print_nll(report["results"])
    for r in report["results"]:
        _print_layers(r)
    if "startup" in report:
        s = report["startup"]
        print(f"\nstart-up (import + build + first conv step, fresh process): cold {s['cold_s']:.2f} s "
              f"(compiling), warm {s['warm_s']:.2f} s (from the numba cache)")
        print(f"peak memory of a conv VAE MNIST training run ({s['memory_steps']} steps + test-set evaluation): "
              f"{s['peak_rss_mb']:.0f} MB")


def _name_width(rows: list[dict]) -> int:
    """The model column's width: the longest variant name ('conv-iwae5'), so the columns line up."""
    return max([6] + [len(r["model"]) for r in rows])


def _print_page_faults(rows: list[dict], vs: bool) -> None:
    if rows[0]["page_faults_per_step"] is None:
        return
    counts = [f"{r['model']} {r['page_faults_per_step']:.0f}"
              + (f" / {r['torch_page_faults_per_step']:.0f}" if vs else "") for r in rows]
    print("page faults per training step (pages malloc took fresh from the OS)"
          + (", scratchvae / PyTorch: " if vs else ": ") + ", ".join(counts))


def _print_products(rows: list[dict], vs: bool) -> None:
    print("matrix products alone, run as the step and inference run them (the floor NumPy's BLAS sets "
          "under them; see benchmarks/floor.py):")
    w = _name_width(rows)
    for r in rows:
        line = f"  {r['model']:<{w}}"
        for what, ms, ours, over_torch in (("step", "products_ms", "train_ms", "products_over_torch"),
                                           ("inference", "inference_products_ms", "inference_ms",
                                            "inference_products_over_torch")):
            line += f"  {what} {r[ms]:6.1f} ms (ours takes {r[ours] / r[ms]:4.2f}x it"
            line += f"; it is {r[over_torch]:4.2f}x PyTorch's)" if vs else ")"
        print(line)


def _print_layers(r: dict) -> None:
    layers = r.get("layers", [])
    if not layers:
        return
    print(f"\n{r['model']}: every layer on the whole batch, one worker; in brackets its matrix products alone")

    def ms(layer_ms: float, gemm_ms: float | None) -> str:
        return f"{layer_ms:6.2f} ms" + (f" ({gemm_ms:5.2f})" if gemm_ms is not None else " " * 8)

    for lr in layers:
        print(f"  {lr['layer']:<11} {lr['type'][:58]:<58} fwd {ms(lr['forward_ms'], lr['gemm_forward_ms'])}"
              f"  bwd {ms(lr['backward_ms'], lr['gemm_backward_ms'])}" + ("" if lr["input_grad"] else " (no dx)"))
    total = sum(lr["forward_ms"] + lr["backward_ms"] for lr in layers)
    gemm = sum(lr["gemm_forward_ms"] + lr["gemm_backward_ms"] for lr in layers if lr["gemm_forward_ms"] is not None)
    print(f"  all layers: {total:.1f} ms, of which matrix products alone {gemm:.1f} ms ({100 * gemm / total:.0f}%)")


def _print_nll(rows: list[dict]) -> None:
    rows = [r for r in rows if "nll_s" in r]
    if not rows:
        return
    r0 = rows[0]
    print(f"importance-sampled nll, K = {r0['nll_k']} on {r0['nll_images']} test images, "
          f"{r0['nll_batch_size']} decoded rows at a time (see nll.py), median seconds per estimate:")
    w = _name_width(rows)
    for r in rows:
        line = f"  {r['model']:<{w}} {r['nll_s']:7.2f} s"
        if "torch_nll_s" in r:
            line += (f"   PyTorch {r['torch_nll_s']:7.2f} s   ratio {r['nll_ratio']:4.2f}x   "
                     f"estimates agree to {r['nll_max_abs_diff']:.1e} nats")
        print(line)
