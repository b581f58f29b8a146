"""add_matmul_blas (out += a @ b through BLAS's gemm with beta = 1) against NumPy's out + a @ b,
and the two NumPy calls beside it, matmul_nogil and sum_axis0."""
import numpy as np
import pytest

from scratchvae._threads import blas_thread_control
from scratchvae.kernels import blas
from scratchvae.kernels.blas import add_matmul_blas, add_matmul_reference, matmul_nogil, sum_axis0


def _layouts(m: np.ndarray) -> dict[str, np.ndarray]:
    """The same 2-D values in the memory layouts a layer passes: C order, a transposed view
    (F order), and a column slice of a wider array (rows spaced wider than they are long)."""
    wide = np.zeros((m.shape[0], m.shape[1] + 3), m.dtype)
    wide[:, 1:1 + m.shape[1]] = m
    return {"C": np.ascontiguousarray(m), "F": np.asfortranarray(m), "slice": wide[:, 1:1 + m.shape[1]]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout_a", ["C", "F", "slice", "sliceT"])
@pytest.mark.parametrize("layout_b", ["C", "F", "slice"])
def test_add_matmul_adds_the_product(dtype, layout_a, layout_b):
    rng = np.random.default_rng(0)
    a, b, out = (rng.standard_normal(s).astype(dtype) for s in ((5, 7), (7, 4), (5, 4)))
    if layout_a == "sliceT":                            # a transposed column slice: dy.T of a sliced dy
        a = np.ascontiguousarray(np.hstack([np.ones((7, 2), dtype), a.T]))[:, 2:].T
    else:
        a = _layouts(a)[layout_a]
    b = _layouts(b)[layout_b]
    expected = out + a @ b
    add_matmul_blas(out, a, b)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


@pytest.mark.skipif(blas_thread_control() is None, reason="NumPy's BLAS is not OpenBLAS")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_blas_gemm_is_found_where_numpy_uses_openblas(dtype):
    """Else every call would silently take the slower fallback."""
    assert blas._gemm(np.dtype(dtype)) is not None


def test_a_linear_layers_operands_go_to_blas_and_a_refusal_falls_back(monkeypatch):
    rng = np.random.default_rng(1)
    dy, x = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    calls = []
    monkeypatch.setattr(blas, "_call", lambda *args: calls.append(args) or False)  # says "could not"
    out = np.zeros((3, 4), np.float32)
    add_matmul_blas(out, dy.T, x)
    np.testing.assert_allclose(out, dy.T @ x, rtol=1e-6)       # the fallback gave the same sum
    assert len(calls) == (1 if blas._gemm(np.dtype(np.float32)) is not None else 0)


@pytest.mark.parametrize("case", ["no blas", "int", "mixed dtypes", "overlap", "out not contiguous", "empty"])
def test_fallbacks_give_the_same_sum(case, monkeypatch):
    rng = np.random.default_rng(2)
    a, b, out = (rng.standard_normal(s) for s in ((4, 3), (3, 5), (4, 5)))
    if case == "no blas":
        monkeypatch.setattr(blas, "_gemm", lambda dtype: None)
    elif case == "int":
        a, b, out = (np.round(10 * m).astype(np.int64) for m in (a, b, out))
    elif case == "mixed dtypes":
        a = a.astype(np.float32)
    elif case == "overlap":
        out = rng.standard_normal((4, 5))
        a = out[:, :3]                                          # a is part of out
    elif case == "out not contiguous":
        out = np.asfortranarray(out)
    elif case == "empty":
        a, b = np.zeros((4, 0)), np.zeros((0, 5))
    expected = out + a @ b
    add_matmul_blas(out, a, b)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_shapes_that_do_not_fit_are_an_error():
    with pytest.raises(ValueError, match="does not fit"):
        add_matmul_blas(np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 2)))


def test_the_reference_adds_the_same_product():
    rng = np.random.default_rng(3)
    a, b, out = (rng.standard_normal(s) for s in ((5, 7), (7, 4), (5, 4)))
    expected = out.copy()
    add_matmul_blas(expected, a, b)
    add_matmul_reference(out, a, b)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_nogil_and_sum_axis0_are_the_plain_formulas(dtype):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((300, 5)).astype(dtype), rng.standard_normal((300, 9)).astype(dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(matmul_nogil(a.T, b), a.T @ b, rtol=tol, atol=tol)     # a thin dweight
    total = sum_axis0(a)
    assert total.shape == (5,) and total.dtype == dtype
    np.testing.assert_allclose(total, a.sum(axis=0), rtol=tol, atol=tol)
