"""Conv2d and ConvTranspose2d: gradients, adjointness, shapes, errors, torch (naive loops: test_reference_kernels)."""
import math
import threading

import numpy as np
import pytest

from scratchvae.gradcheck import check_module
from scratchvae.kernels import conv_output_size, conv_transpose_output_size
from scratchvae.nn.conv import Conv2d
from scratchvae.nn.conv_transpose import ConvTranspose2d
from scratchvae.nn.workspace import scratch

# Conv2d: in, out, input (N, H, W), kernel_size, stride, padding, dilation, bias
CONV = [
    (3, 2, (2, 5, 5), 3, 1, 0, 1, True),
    (3, 2, (2, 6, 6), 3, 2, 1, 1, True),
    (1, 2, (1, 7, 7), 3, 3, 2, 1, True),                       # batch 1, one input channel
    (2, 3, (2, 7, 7), 3, 1, 2, 2, True),                       # dilation 2
    (2, 2, (2, 6, 7), (2, 3), (2, 1), (1, 0), (1, 2), True),   # non-square everything
    (3, 2, (2, 5, 5), 3, 1, 1, 1, False),                      # no bias
]
# ConvTranspose2d: in, out, input (N, H, W), kernel_size, stride, padding, output_padding, dilation, bias
CONVT = [
    (3, 2, (2, 3, 3), 3, 1, 0, 0, 1, True),
    (2, 3, (2, 3, 3), 3, 2, 1, 1, 1, True),                    # output_padding 1 with stride 2
    (2, 2, (2, 3, 3), 3, 1, 0, 1, 2, True),                    # output_padding 1, stride 1, dilation 2
    (1, 2, (1, 3, 4), 3, 3, 2, 0, 1, True),                    # stride 3, padding 2, batch 1, one channel
    (2, 2, (2, 3, 4), (2, 3), (2, 1), (1, 0), (1, 1), (1, 2), True),  # non-square; W extended
    (2, 2, (1, 3, 3), 3, 2, 2, 0, 2, True),                    # dilation 2, padding 2
    (3, 2, (2, 3, 3), 3, 2, 0, 0, 1, False),                   # no bias
]


def _conv(cfg, rng=None):
    c_in, c_out, (n, h, w), k, s, p, d, bias = cfg
    layer = Conv2d(c_in, c_out, k, stride=s, padding=p, dilation=d, bias=bias, rng=rng or np.random.default_rng(0))
    return layer, (n, c_in, h, w)


def _convt(cfg, rng=None):
    c_in, c_out, (n, h, w), k, s, p, op, d, bias = cfg
    layer = ConvTranspose2d(c_in, c_out, k, stride=s, padding=p, output_padding=op, dilation=d, bias=bias,
                            rng=rng or np.random.default_rng(0))
    return layer, (n, c_in, h, w)


# Checks [CONV-4], [CONV-5], [CONV-6], [CONV-7] (docs/derivations).
@pytest.mark.parametrize("cfg", CONV, ids=str)
def test_conv2d_gradcheck(cfg):
    layer, shape = _conv(cfg)
    report = check_module(layer, np.random.default_rng(1).standard_normal(shape))
    assert report.ok, "\n" + str(report)


# Checks [CONVT-4], [CONVT-5], [CONVT-6], [CONVT-7] (docs/derivations).
@pytest.mark.parametrize("cfg", CONVT, ids=str)
def test_conv_transpose2d_gradcheck(cfg):
    layer, shape = _convt(cfg)
    report = check_module(layer, np.random.default_rng(1).standard_normal(shape))
    assert report.ok, "\n" + str(report)


# Checks [CONVT-3] (docs/derivations).
@pytest.mark.parametrize("cfg", CONVT, ids=str)
def test_conv_transpose_is_the_adjoint_of_conv(cfg):
    """<conv(z), y> == <z, conv_transpose(y)> when both use one weight and no bias."""
    c_in, c_out, (n, h, w), k, s, p, op, d, _ = cfg
    convt, y_shape = _convt(cfg[:-1] + (False,))
    conv = Conv2d(c_out, c_in, k, stride=s, padding=p, dilation=d, bias=False)
    convt.to(np.float64)
    conv.to(np.float64)
    conv.weight.data = convt.weight.data  # (C_in of convt, C_out of convt, kH, kW) = Conv2d's (out, in, kH, kW)
    rng = np.random.default_rng(3)
    y = rng.standard_normal(y_shape)
    convt_y = convt.forward(y)
    z = rng.standard_normal(convt_y.shape)
    # With output_padding >= stride the conv of z has extra windows that y has no entry for.
    conv_z = conv.forward(z)[:, :, :h, :w]
    assert conv_z.shape == y.shape
    assert np.vdot(conv_z, y) == pytest.approx(np.vdot(z, convt_y), rel=1e-12)


# Checks [CONV-2], [CONVT-2] (docs/derivations).
def test_conv_transpose_restores_the_conv_input_shape():
    for H in range(5, 10):
        conv = Conv2d(1, 1, 3, stride=2, padding=1)
        h_out = conv.forward(np.zeros((1, 1, H, H))).shape[2]
        op = (H + 2 - 2 - 1) % 2  # what the integer division in the conv formula dropped
        convt = ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=op)
        assert convt.forward(np.zeros((1, 1, h_out, h_out))).shape == (1, 1, H, H)


@pytest.mark.parametrize("layer, x_shape, expected", [
    (lambda: Conv2d(1, 4, 3, stride=2, padding=1), (2, 1, 28, 28), (2, 4, 14, 14)),
    (lambda: Conv2d(1, 1, (3, 5), stride=(2, 1), padding=(0, 2), dilation=(1, 2)), (1, 1, 9, 10), (1, 1, 4, 6)),
    (lambda: Conv2d(2, 3, 4, stride=3), (1, 2, 7, 8), (1, 3, 2, 2)),
    (lambda: ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1), (2, 4, 14, 14), (2, 1, 28, 28)),
    (lambda: ConvTranspose2d(1, 2, 4, stride=2, padding=1), (1, 1, 7, 7), (1, 2, 14, 14)),
    (lambda: ConvTranspose2d(1, 1, (2, 3), stride=(3, 1), padding=(0, 1), output_padding=(2, 1), dilation=(1, 2)),
     (1, 1, 3, 4), (1, 1, 10, 7)),  # H: 2*3 - 0 + 1*1 + 2 + 1 = 10;  W: 3*1 - 2 + 2*2 + 1 + 1 = 7
])
# Checks [CONV-2], [CONVT-2] (docs/derivations).
def test_output_shapes(layer, x_shape, expected):
    layer = layer()
    out = layer.forward(np.zeros(x_shape, dtype=np.float32))
    assert out.shape == expected and out.dtype == np.float32
    assert layer.backward(np.ones(expected, dtype=np.float32)).shape == x_shape
    args = zip(layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    if isinstance(layer, Conv2d):
        assert expected[2:] == tuple(conv_output_size(n, *a) for n, a in zip(x_shape[2:], args))
    else:
        assert expected[2:] == tuple(conv_transpose_output_size(n, *a, op)
                                     for n, a, op in zip(x_shape[2:], args, layer.output_padding))


def test_gradients_accumulate():
    for layer, shape in (_conv(CONV[1]), _convt(CONVT[1])):
        x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
        dout = np.ones_like(layer.forward(x))
        layer.backward(dout)
        once = [p.grad.copy() for p in layer.parameters()]
        layer.backward(dout)
        for p, g in zip(layer.parameters(), once):
            np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-6)


@pytest.mark.parametrize("make, x_shape, needles", [
    (lambda: Conv2d(1, 1, 5), (1, 1, 3, 3), ["Conv2d", "(3, 3)", "(-1, -1)", "kernel_size=(5, 5)"]),
    (lambda: Conv2d(1, 1, 3, dilation=(1, 3)), (1, 1, 4, 6), ["Conv2d", "(4, 6)", "(2, 0)"]),
    (lambda: ConvTranspose2d(1, 1, 1, padding=2), (1, 1, 1, 1), ["ConvTranspose2d", "(1, 1)", "(-3, -3)"]),
    (lambda: Conv2d(3, 2, 3), (2, 4, 5, 5), ["Conv2d", "(N, 3, H, W)", "(2, 4, 5, 5)"]),
    (lambda: ConvTranspose2d(3, 2, 3), (2, 2, 5, 5), ["ConvTranspose2d", "(N, 3, H, W)", "(2, 2, 5, 5)"]),
    (lambda: Conv2d(3, 2, 3), (3, 5, 5), ["Conv2d", "(N, 3, H, W)", "(3, 5, 5)"]),
])
def test_bad_inputs_raise_with_the_numbers(make, x_shape, needles):
    layer = make()
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros(x_shape, dtype=np.float32))
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


@pytest.mark.parametrize("make, needles", [
    (lambda: Conv2d(1, 1, 0), ["Conv2d", "kernel_size", "(0, 0)"]),
    (lambda: Conv2d(1, 1, 3, stride=(1, 0)), ["stride", "(1, 0)"]),
    (lambda: Conv2d(1, 1, 3, dilation=-1), ["dilation", "(-1, -1)"]),
    (lambda: Conv2d(1, 1, 3, padding=(0, -2)), ["padding", "(0, -2)"]),
    (lambda: Conv2d(0, 1, 3), ["in_channels", "0"]),
    (lambda: Conv2d(1, 1, (3, 3, 3)), ["kernel_size", "(3, 3, 3)"]),
    (lambda: ConvTranspose2d(1, 1, 3, stride=0), ["ConvTranspose2d", "stride", "(0, 0)"]),
    (lambda: ConvTranspose2d(1, 1, 3, stride=2, output_padding=2), ["output_padding (2, 2)", "stride (2, 2)",
                                                                     "dilation (1, 1)"]),
    (lambda: ConvTranspose2d(1, 1, 3, stride=1, output_padding=1), ["output_padding (1, 1)", "stride (1, 1)"]),
    (lambda: ConvTranspose2d(1, 1, 3, stride=(2, 1), output_padding=(1, 1), dilation=(1, 1)), ["(1, 1)", "(2, 1)"]),
    (lambda: ConvTranspose2d(1, 1, 3, stride=2, output_padding=-1), ["output_padding (-1, -1)"]),
])
def test_bad_arguments_raise_with_the_numbers(make, needles):
    with pytest.raises(ValueError) as info:
        make()
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_output_padding_is_allowed_below_stride_or_dilation():
    ConvTranspose2d(1, 1, 3, stride=2, output_padding=1)               # < stride
    ConvTranspose2d(1, 1, 3, stride=1, output_padding=1, dilation=2)   # < dilation only
    ConvTranspose2d(1, 1, 3, stride=(3, 1), output_padding=(2, 1), dilation=(1, 2))


def test_init_bounds():
    rng = np.random.default_rng(5)
    # ConvTranspose2d: fan_in = C_out*k*k = 288 (torch's dim-1 rule), not C_in*k*k = 36.
    for layer, fan_in in ((Conv2d(32, 16, 3, rng=rng), 32 * 9), (ConvTranspose2d(4, 32, 3, rng=rng), 32 * 9)):
        bound = 1 / math.sqrt(fan_in)
        for p in (layer.weight.data, layer.bias.data):
            assert np.abs(p).max() <= bound
        w = layer.weight.data
        assert np.abs(w).max() > 0.95 * bound
        assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # std of U(-b, b)
        assert abs(w.mean()) < 0.05 * bound


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        Conv2d(1, 1, 3).backward(np.zeros((1, 1, 1, 1)))


def test_repr_names_the_settings():
    assert "kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)" in repr(Conv2d(1, 2, 3, 2, 1))
    assert "output_padding=(1, 1)" in repr(ConvTranspose2d(1, 2, 3, 2, 1, 1))


# -- PyTorch parity (skipped when torch is absent) -------------------------------------------


def _torch_layer(ours):
    torch = pytest.importorskip("torch")
    from torch_twin import torch_layer  # the layer's declared twin (imports torch)
    theirs = torch_layer(ours)
    state = ours.state_dict()
    assert sorted(state) == sorted(theirs.state_dict())
    theirs = theirs.to(torch.float64 if ours.dtype == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return torch, theirs


# Checks [CONV-1], [CONV-3], [CONVT-1] (docs/derivations).
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind, cfg", [("conv", c) for c in CONV] + [("convt", c) for c in CONVT], ids=str)
def test_matches_torch(kind, cfg, dtype):
    ours, shape = (_conv if kind == "conv" else _convt)(cfg)
    ours.to(dtype)
    torch, theirs = _torch_layer(ours)
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    out = ours.forward(x)
    xt = torch.tensor(x, requires_grad=True)
    out_t = theirs(xt)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = ours.backward(dout)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, getattr(theirs, name).grad.numpy(), rtol=tol, atol=tol, err_msg=name)


def test_torch_init_bounds_agree():
    torch = pytest.importorskip("torch")
    for theirs, ours in ((torch.nn.Conv2d(32, 16, 3), Conv2d(32, 16, 3)),
                         (torch.nn.ConvTranspose2d(4, 32, 3), ConvTranspose2d(4, 32, 3))):
        w_t, w = theirs.weight.detach().numpy(), ours.weight.data
        assert w_t.shape == w.shape
        assert np.abs(w_t).max() == pytest.approx(np.abs(w).max(), rel=0.05)
        assert w_t.std() == pytest.approx(w.std(), rel=0.1)


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2d(2, 1, 3, padding=1, bias=False), (1, 2, 5, 5)),      # N = 1 and C_out = 1
    (lambda: Conv2d(2, 3, 3, padding=1, bias=False), (1, 2, 5, 5)),
    (lambda: ConvTranspose2d(1, 2, 3, stride=2, bias=False), (1, 1, 4, 4)),
    (lambda: ConvTranspose2d(3, 2, 3, stride=2), (2, 3, 4, 4)),
])
def test_outputs_are_never_workspace_views(make, shape):
    """Layers reuse buffers between calls; what they return must survive the next call."""
    layer = make()
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    out1 = layer.forward(x1)
    kept_out = out1.copy()
    dx1 = layer.backward(np.ones_like(out1))
    kept_dx = dx1.copy()
    out2 = layer.forward(x2)
    layer.backward(2 * np.ones_like(out2))
    np.testing.assert_array_equal(out1, kept_out)
    np.testing.assert_array_equal(dx1, kept_dx)


def test_scratch_reuses_one_buffer_per_thread_and_never_aliases_a_live_array():
    a = scratch((4, 5), np.float32)
    a[:] = 1
    b = scratch((2, 3), np.float64)                              # a is alive: b must get other memory
    assert not np.shares_memory(a, b)
    b[:] = 2
    assert np.all(a == 1)
    address = b.ctypes.data
    del a, b
    c = scratch((3, 3), np.float32)                              # nothing alive: the buffer is reused
    assert c.ctypes.data == address
    theirs = {}
    worker = threading.Thread(target=lambda: theirs.update(x=scratch((3, 3), np.float32)))
    worker.start()
    worker.join()
    assert not np.shares_memory(c, theirs["x"])                  # each thread has its own buffer


def test_layers_are_unaffected_by_a_live_scratch_array():
    """A layer asking for scratch while someone still holds the last scratch array gets fresh memory."""
    rng = np.random.default_rng(0)
    layer = ConvTranspose2d(3, 2, 3, stride=2)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    expected = layer.forward(x).copy()
    held = scratch((1000,), np.float32)
    held[:] = 7
    np.testing.assert_array_equal(layer.forward(x), expected)
    assert np.all(held == 7)


def test_input_of_another_dtype_is_computed_in_the_parameters_dtype():
    layer = Conv2d(2, 3, 3).to(np.float64)
    out = layer.forward(np.ones((1, 2, 5, 5), np.float32))
    assert out.dtype == np.float64
    assert layer.backward(np.ones_like(out)).shape == (1, 2, 5, 5)
    t = ConvTranspose2d(2, 3, 3).to(np.float64)
    out = t.forward(np.ones((1, 2, 4, 4), np.float32))
    assert t.backward(np.ones_like(out)).dtype == np.float64
