"""The readable path: the conv layers against the textbook loops, and SCRATCHVAE_KERNELS.

The layers' forward and backward must equal conv2d_naive and conv2d_backward_naive, the
definitions written one product at a time, in whichever mode this process runs. The
environment variable is read once per process, so the mode tests start their own.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import CHILD_CWD
from scratchvae._threads import blas_thread_control
from scratchvae.kernels import KERNELS, conv2d_backward_naive, conv2d_naive
from scratchvae.nn.conv import Conv2d
from scratchvae.nn.conv_transpose import ConvTranspose2d

# Conv2d: in, out, input (N, H, W), kernel_size, stride, padding, dilation, bias
CONV = [
    (3, 2, (2, 5, 5), 3, 1, 0, 1, True),
    (3, 2, (2, 6, 6), 3, 2, 1, 1, True),                       # stride 2, padding 1
    (1, 2, (1, 7, 7), 3, 3, 2, 1, True),                       # batch 1, one input channel
    (2, 3, (2, 7, 7), 3, 1, 2, 2, True),                       # dilation 2
    (2, 2, (2, 6, 7), (2, 3), (2, 1), (1, 0), (1, 2), True),   # non-square everything
    (2, 1, (2, 5, 6), 3, 2, 1, 2, True),                       # one output channel, stride and dilation 2
    (3, 2, (2, 5, 5), 3, 1, 1, 1, False),                      # no bias
]
# ConvTranspose2d: in, out, input (N, H, W), kernel_size, stride, padding, output_padding, dilation
CONVT = [
    (3, 2, (2, 3, 3), 3, 1, 0, 0, 1),
    (2, 3, (2, 3, 3), 3, 2, 1, 1, 1),                          # output_padding 1 with stride 2
    (2, 2, (2, 3, 3), 3, 1, 0, 1, 2),                          # output_padding >= stride: x is zero-extended
    (2, 1, (1, 3, 4), (2, 3), (2, 1), (1, 0), (1, 1), (1, 2)), # non-square, one output channel
]


def _conv(cfg):
    c_in, c_out, (n, h, w), k, s, p, d, bias = cfg
    layer = Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, bias=bias, rng=np.random.default_rng(0))
    return layer.to(np.float64), np.random.default_rng(1).standard_normal((n, c_in, h, w))


@pytest.mark.parametrize("cfg", CONV, ids=str)
def test_conv2d_forward_is_the_naive_loops(cfg):
    layer, x = _conv(cfg)
    bias = None if layer.bias is None else layer.bias.data
    expected = conv2d_naive(x, layer.weight.data, bias, layer.stride, layer.padding, layer.dilation)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", CONV, ids=str)
def test_conv2d_backward_is_the_naive_loops(cfg):
    layer, x = _conv(cfg)
    dout = np.random.default_rng(2).standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    dx_naive, dweight_naive, dbias_naive = conv2d_backward_naive(x, layer.weight.data, dout, layer.stride,
                                                                 layer.padding, layer.dilation)
    np.testing.assert_allclose(dx, dx_naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, dweight_naive, rtol=1e-12, atol=1e-12)
    if layer.bias is not None:
        np.testing.assert_allclose(layer.bias.grad, dbias_naive, rtol=1e-12, atol=1e-12)


def test_naive_backward_is_the_gradient_of_the_naive_forward():
    """Central differences of sum(conv2d_naive(x, w, b) * dout), entry by entry (the loops check each other)."""
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((2, 2, 2, 3)), rng.standard_normal(2)
    geometry = ((2, 1), (1, 2), (2, 1))                                # stride, padding, dilation
    dout = rng.standard_normal(conv2d_naive(x, w, b, *geometry).shape)
    analytic = dict(zip("xwb", conv2d_backward_naive(x, w, dout, *geometry)))
    for name, a in (("x", x), ("w", w), ("b", b)):
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            keep = a[i]
            a[i] = keep + 1e-6
            plus = np.sum(conv2d_naive(x, w, b, *geometry) * dout)
            a[i] = keep - 1e-6
            minus = np.sum(conv2d_naive(x, w, b, *geometry) * dout)
            a[i] = keep
            numeric[i] = (plus - minus) / 2e-6
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("cfg", CONVT, ids=str)
def test_conv_transpose2d_is_the_naive_conv_backward(cfg):
    """ConvTranspose2d(weight) is Conv2d(weight)'s dx; its dx is that conv's forward, its dweight that conv's."""
    c_in, c_out, (n, h, w), k, s, p, op, d = cfg
    layer = ConvTranspose2d(c_in, c_out, k, stride=s, padding=p, output_padding=op, dilation=d, bias=True,
                            rng=np.random.default_rng(0)).to(np.float64)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c_in, h, w))
    out = layer.forward(x)
    weight, bias = layer.weight.data, layer.bias.data                  # (C_in, C_out, kH, kW): a conv C_out -> C_in
    conv = (layer.stride, layer.padding, layer.dilation)
    x_grid = np.zeros(conv2d_naive(np.zeros_like(out), weight, None, *conv).shape)  # that conv's output, >= x
    x_grid[:, :, :h, :w] = x
    dx_naive, _, _ = conv2d_backward_naive(np.zeros_like(out), weight, x_grid, *conv)
    np.testing.assert_allclose(out, dx_naive + bias[:, None, None], rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, conv2d_naive(dout, weight, None, *conv)[:, :, :h, :w], rtol=1e-12, atol=1e-12)
    _, dweight_naive, _ = conv2d_backward_naive(dout, weight, x_grid, *conv)
    np.testing.assert_allclose(layer.weight.grad, dweight_naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, dout.sum(axis=(0, 2, 3)), rtol=1e-12, atol=1e-12)


# -- SCRATCHVAE_KERNELS, each case in a process of its own -----------------------------------------


def _python(code: str, kernels: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SCRATCHVAE_KERNELS"}
    if kernels is not None:
        env["SCRATCHVAE_KERNELS"] = kernels
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=CHILD_CWD)


def test_this_process_runs_the_mode_its_environment_names():
    assert KERNELS == os.environ.get("SCRATCHVAE_KERNELS", "numba")


@pytest.mark.parametrize("value", ["fast", "Reference", ""])
def test_an_unknown_mode_fails_at_import_naming_the_allowed_ones(value):
    result = _python("import scratchvae", value)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "SCRATCHVAE_KERNELS" in last and "numba" in last and "reference" in last and repr(value) in last, last


NAMES = """
import sys
import scratchvae, scratchvae.optim as optim
from scratchvae import kernels
from scratchvae.kernels import batchnorm as bn_kernels, bce, blas, fused, reference
from scratchvae.nn import activations, batchnorm, conv, conv_transpose, linear
from scratchvae.objective import losses
im2col_module = sys.modules["scratchvae.kernels.im2col"]
suffix = sys.argv[1]
expected = {
    "im2col": getattr(reference if suffix == "reference" else im2col_module, "im2col_" + suffix),
    "col2im": getattr(reference if suffix == "reference" else im2col_module, "col2im_" + suffix),
    "adam_update": fused.adam_update_numba,                       # the mode picks Adam(fused=...) instead
    "relu_backward": getattr(fused, "relu_backward_" + suffix),
    "relu_backward_inplace": getattr(fused, "relu_backward_inplace_" + suffix),
    "add_matmul": getattr(blas, "add_matmul_" + ("reference" if suffix == "reference" else "blas")),
    "leaky_relu": getattr(fused, "leaky_relu_" + suffix),
    "leaky_relu_backward": getattr(fused, "leaky_relu_backward_" + suffix),
}
for name in ("batchnorm_stats", "batchnorm_forward", "batchnorm_backward"):
    expected[name] = getattr(bn_kernels, name + "_" + suffix)
for name in ("bce_logits_sum", "bce_logits_grad", "bce_logits_rows"):
    expected[name] = getattr(bce, name + "_" + suffix)
callers = [kernels, im2col_module, fused, blas, bn_kernels, bce,
           conv, conv_transpose, linear, activations, batchnorm, losses, optim]
wrong = [(m.__name__, name) for m in callers for name, f in expected.items()
         if hasattr(m, name) and getattr(m, name) is not f]
used = {name for m in callers[6:] for name in expected if hasattr(m, name)}
assert not wrong and used == set(expected), (wrong, used)
assert optim.Adam(linear.Linear(2, 2).parameters()).fused == (suffix == "numba")
print(kernels.KERNELS)
"""


@pytest.mark.parametrize("mode, suffix", [(None, "numba"), ("numba", "numba"), ("reference", "reference")])
def test_every_kernel_name_the_library_calls_is_the_chosen_implementation(mode, suffix):
    """The layers and the optimizer call the kernels through names the mode binds, so nothing else changes."""
    result = _python(NAMES, mode, suffix)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [mode or "numba"]


STEP = """
import sys
import numpy as np
import scratchvae as sv
sv.manual_seed(0)                                                 # the initial weights
model = sv.build_model("conv", rng=np.random.default_rng(0)).to(np.float64)
x = (np.random.default_rng(1).random((6, 1, 28, 28)) < 0.3).astype(np.float64)
eps = np.random.default_rng(2).standard_normal((6, model.latent_dim))
opt = sv.Adam(model.parameters(), lr=1e-3)
losses = sv.DataParallel(model, int(sys.argv[2])).train_step(x, opt, eps=eps)   # Adam inside the reduce
arrays = {f"grad.{n}": p.grad for n, p in model.named_parameters()}
arrays.update({f"data.{n}": p.data for n, p in model.named_parameters()})
np.savez(sys.argv[1], total=losses.total, **arrays)
"""


@pytest.mark.skipif(blas_thread_control() is None, reason="two workers need an OpenBLAS whose threads can be set")
def test_reference_kernels_give_the_same_gradients_and_step_on_two_workers(tmp_path):
    """A conv VAE's training step (im2col, col2im, one-channel layers, ReLU, Linear, Adam), split over two
    worker threads with the NumPy references, against one worker and against the Numba kernels."""
    runs = {}
    for mode, workers in (("numba", 2), ("reference", 2), ("reference", 1)):
        path = tmp_path / f"{mode}{workers}.npz"
        result = _python(STEP, mode, str(path), str(workers))
        assert result.returncode == 0, result.stderr
        runs[mode, workers] = dict(np.load(path))
    expected = runs["numba", 2]
    for key in (("reference", 2), ("reference", 1)):
        for name, a in runs[key].items():
            scale = np.abs(expected[name]).max()
            assert name == "total" or name.startswith("data.") or scale > 0, name
            np.testing.assert_allclose(a, expected[name], rtol=1e-9, atol=1e-12 * scale, err_msg=f"{key} {name}")
