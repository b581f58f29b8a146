"""Fixtures and helpers every test file shares, and SCRATCHVAE_REQUIRE.

SCRATCHVAE_REQUIRE=torch,chromium (comma-separated words; .ci/run sets it to "all") turns a skip
whose reason names one of the words into a failure: the tests that compare with PyTorch or run the
explorer in Chromium skip on a machine without them, and a run that is meant to have them must not
pass by skipping them. "all" fails every skip, and "installed" (or "all") has tests/test_installed.py
check that the run imports the installed package, not the source tree.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from scratchvae.nn.init import manual_seed

#: where tests run a `python -c` or `python -m` child: Python puts that folder first on the child's path,
#: and the checkout's root would put its source tree ahead of the installed package
CHILD_CWD = Path(__file__).resolve().parent
#: the files whose tests run the kernels (scratchvae/kernels/: im2col, col2im, the fused passes, BatchNorm,
#: BCE, the BLAS product, Adam) through the layers, losses, optimizers and models: marked `kernels`, so
#: CI runs them a second time with SCRATCHVAE_KERNELS=reference (.ci/run). The commands' and demos' tests
#: run the same kernels again through training runs, and are left to the compiled ones.
KERNEL_FILES = {"test_adding_a_layer.py", "test_backward_params.py", "test_batchnorm.py",
                "test_batchnorm_kernels.py", "test_bce_kernel.py", "test_blas.py", "test_conv.py",
                "test_distributions.py", "test_evaluation.py", "test_fused.py", "test_iwae.py", "test_kernels.py",
                "test_latent.py", "test_layers.py", "test_logstd.py", "test_models.py", "test_objective.py",
                "test_optim.py", "test_parallel.py", "test_priors.py", "test_reference_kernels.py", "test_torch_parity.py",
                "test_tour.py", "test_trace_grads.py", "test_train_step.py"}
REQUIRED = {word.strip().lower() for word in os.environ.get("SCRATCHVAE_REQUIRE", "").split(",") if word.strip()}


def required(word: str) -> bool:
    return word in REQUIRED or "all" in REQUIRED


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)


def _fail_a_required_skip(report) -> None:
    if not report.skipped or getattr(report, "wasxfail", None) is not None:
        return
    reason = _skip_reason(report)
    named = [word for word in REQUIRED if word == "all" or word in reason.lower()]
    if named:
        report.outcome = "failed"
        report.longrepr = f"skipped, but SCRATCHVAE_REQUIRE={','.join(sorted(REQUIRED))} requires it: {reason}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in KERNEL_FILES:
            item.add_marker(pytest.mark.kernels)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_a_required_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield                  # a module-level importorskip skips at collection
    _fail_a_required_skip(outcome.get_result())


@pytest.fixture(autouse=True)
def seeded_weights():
    """Every test starts from the same initial-weight generator, whatever ran before it.

    Layers built without an explicit generator draw from nn/init.py's module-level one;
    unseeded, a test's weights (and so whether, say, a ReLU input lands within a
    finite-difference step of its kink) depended on which tests had run first.
    """
    manual_seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.1) -> np.ndarray:
    """Random values with |x| >= margin, so ReLU-style kinks are never within a finite-difference step."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def adam_steps(model, x: np.ndarray, steps: int, lr: float = 3e-3) -> dict:
    """Train ``model`` for ``steps`` full-batch Adam steps on x; its state_dict (test checkpoints)."""
    from scratchvae import Adam
    optimizer = Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x)
        model.backward(input_grad=False)
        optimizer.step()
    return model.state_dict()


def blob_images(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 'images' of one Gaussian blob each, labelled 0 (blob on the left half) or 1 (right
    half): a small labelled dataset for the command tests, (n, 28, 28) and (n,)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = rng.uniform(6, 22, (2, n, 1, 1))
    images = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)    # (n, 28, 28)
    return images.astype(np.uint8), (cx.ravel() > 14).astype(np.int64)
