"""The test run itself: it tests what pip installed, and a skip it was told not to allow fails it
(SCRATCHVAE_REQUIRE, tests/conftest.py; .ci/run sets it to "all")."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scratchvae
from conftest import CHILD_CWD, required

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "scratchvae"
WHERE = "import scratchvae, scratchvae.data, scratchvae.explore; print(scratchvae.__file__)"


def _under_the_source_tree(path: str) -> bool:
    return Path(path).resolve().is_relative_to(SOURCE)


def test_the_run_imports_the_installed_package():
    """`.venv/bin/pytest` after `pip install ".[test]"` (the README's command, CI's) imports the wheel's
    copy, so its bundled MNIST and faces and the explorer's page and script are the ones tested; so do
    the processes tests start from the tests folder. An editable install is the source tree by design."""
    if not required("installed"):
        pytest.skip("SCRATCHVAE_REQUIRE=installed (CI: all) checks the run imports the installed package")
    assert not _under_the_source_tree(scratchvae.__file__), scratchvae.__file__
    child = subprocess.run([sys.executable, "-c", WHERE], capture_output=True, text=True, cwd=CHILD_CWD, check=True)
    assert not _under_the_source_tree(child.stdout.strip()), child.stdout
    installed = Path(scratchvae.__file__).parent
    page_files = sorted(f"explore/{p.name}" for p in (SOURCE / "explore").iterdir() if p.suffix in (".html", ".js"))
    assert "explore/page.html" in page_files and len(page_files) > 2
    for data in (*page_files, "data/_files/mnist/t10k-images-idx3-ubyte.gz", "data/_files/olivetti"):
        assert (installed / data).exists(), f"the wheel lacks {data}"


def _pytest(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "SCRATCHVAE_REQUIRE"} | env
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=cwd, env=environment, timeout=600)


def test_a_required_torch_that_cannot_be_imported_fails_the_run(tmp_path):
    """The PyTorch parity module skips at collection when torch cannot be imported; SCRATCHVAE_REQUIRE
    makes that a failure. (torch hidden behind a package of that name that refuses to import.)"""
    (tmp_path / "hide" / "torch").mkdir(parents=True)
    (tmp_path / "hide" / "torch" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch' (hidden by tests/test_the_test_run.py)\")\n")
    hidden = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "hide"), os.environ.get("PYTHONPATH", "")])}
    target = [str(HERE / "test_torch_parity.py"), str(HERE / "test_derivations.py")]   # the second: quick, no torch
    allowed = _pytest(target, HERE, **hidden)
    assert allowed.returncode == 0 and "skipped" in allowed.stdout and "torch" in allowed.stdout, allowed.stdout
    refused = _pytest(target, HERE, SCRATCHVAE_REQUIRE="torch", **hidden)
    assert refused.returncode != 0 and "SCRATCHVAE_REQUIRE=torch requires it" in refused.stdout, refused.stdout


def test_required_words_fail_the_skips_that_name_them(tmp_path):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\n"
        "def test_browser():\n    pytest.skip('no /usr/bin/chromium (Debian\\'s chromium package)')\n\n"
        "def test_other():\n    pytest.skip('some other reason')\n\n"
        "def test_runs():\n    pass\n")
    counts = {}
    for words in ("", "chromium", "torch,chromium", "all"):
        done = _pytest(["test_skips.py"], tmp_path, SCRATCHVAE_REQUIRE=words)
        counts[words] = (done.returncode != 0, done.stdout.strip().splitlines()[-1])
    assert counts[""] == (False, counts[""][1]) and "1 passed, 2 skipped" in counts[""][1]
    for words in ("chromium", "torch,chromium"):
        assert counts[words][0] and "1 failed, 1 passed, 1 skipped" in counts[words][1], counts[words]
    assert counts["all"][0] and "2 failed, 1 passed" in counts["all"][1], counts["all"]


def test_the_reference_kernel_pass_runs_every_kernel_test():
    """CI runs `-m kernels` again with SCRATCHVAE_KERNELS=reference. It used to select `-k grad`, which
    left out the layers against the naive loops, the tour and the adjoint tests."""
    done = _pytest(["--collect-only", "-m", "kernels", str(HERE)], HERE)
    assert done.returncode == 0, done.stdout[-2000:]
    for test in ("test_reference_kernels.py::test_conv2d_forward_is_the_naive_loops",
                 "test_reference_kernels.py::test_every_kernel_name_the_library_calls_is_the_chosen_implementation",
                 "test_tour.py::test_every_step_agrees_with_finite_differences",
                 "test_conv.py::test_conv_transpose_is_the_adjoint_of_conv",
                 "test_kernels.py::test_col2im_is_the_adjoint_of_im2col",
                 "test_optim.py::test_adam_matches_torch", "test_models.py::", "test_train_step.py::"):
        assert test in done.stdout, test
    kernel_files = {p.name for p in HERE.glob("test_*kernel*.py")}
    assert kernel_files and all(f"{name}::" in done.stdout for name in kernel_files)
