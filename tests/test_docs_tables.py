"""The tables in the docs are what benchmarks/tables.py prints: the deterministic ones (the zoo's table of
what catches what, the tour) checked against the code here; the timed ones (README's speed and
evaluate tables) say which command made them on which machine, and the script's ranges are checked
on made-up reports (timing is the benchmark's business, not a test's). tests/test_zoo.py checks the
zoo's cheap rows themselves."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))        # the script's module, as `python benchmarks/tables.py` finds it
import tables  # noqa: E402
from test_zoo import ZOO_MD  # noqa: E402

README = (ROOT / "README.md").read_text()
#: a finite-difference error and the chain's difference: numbers that move with summation order
ROUNDING = re.compile(r"(rel\. err|max rel\. error vs finite differences|max rel\. difference) (\d\.\de[+-]\d\d)")


def _pasted_zoo_runs() -> dict[str, str]:
    return {bug: ZOO_MD.split(f"```\nzoo {bug}:", 1)[1].split("```", 1)[0] for bug in tables.BUGS}


def test_the_zoo_table_is_the_one_its_pasted_runs_give():
    shown = ZOO_MD.split("## What catches what", 1)[1].split("\n\n", 2)[1].strip()
    assert tables.zoo_table(_pasted_zoo_runs()) == shown


@pytest.mark.parametrize("command", tables.TOURS)
def test_the_docs_tour_is_what_the_tour_prints(command):
    """docs/tour.md's output, line for line; its finite-difference errors within a factor 10 (they are
    rounding, ~1e-16 / h, which another BLAS's summation order moves in its last digits: never by 10x),
    and the chain's difference with model.backward() within the tour's own 1e-12."""
    shown = (ROOT / "docs" / "tour.md").read_text().split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    printed = tables.tour_text(command) + "\n"
    assert ROUNDING.sub(r"\1 X", printed) == ROUNDING.sub(r"\1 X", shown)
    for (what, now), (_, then) in zip(ROUNDING.findall(printed), ROUNDING.findall(shown)):
        if what == "max rel. difference":
            assert float(now) <= 1e-12 and float(then) <= 1e-12
        else:
            assert 0.1 < float(now) / float(then) < 10, (what, now, then)


def _report(ms: float, ratio: float) -> dict:
    row = {"model": "mlp", "workers": 1, "train_ms": ms, "torch_train_ms": 5.9, "train_ratio": ratio,
           "inference_ms": 9.4, "torch_inference_ms": 8.7, "inference_ratio": 1.08,
           "nll_s": 0.46, "torch_nll_s": 0.58, "nll_ratio": 0.79, "nll_k": 100, "nll_images": 1000}
    return {"results": [row, {**row, "model": "conv", "workers": 2}]}


def test_the_speed_table_shows_the_range_over_runs():
    one = tables.speed_table([_report(4.7, 0.79)])
    assert "| MLP 784-400-20 | 4.7 / 5.9 ms | 0.79x | 9.4 / 8.7 ms | 1.08x |" in one
    assert "| reference conv VAE (2 workers) |" in one and "MLP 0.46 / 0.58 s (0.79x)" in one
    three = tables.speed_table([_report(4.7, 0.79), _report(3.4, 0.58), _report(4.1, 0.69)])
    assert "| MLP 784-400-20 | 3.4-4.7 / 5.9 ms | 0.58-0.79x | 9.4 / 8.7 ms | 1.08x |" in three


def test_the_evaluate_table_row():
    row = {"model": "conv", "elbo": 95.466, "recon": 71.05, "kl": 24.42, "nll": 89.851, "nll_stderr": 0.78,
           "active_units": 24, "latent_dim": 32, "wall_s": 61.4, "peak_mb": 512.3}
    assert tables.evaluate_table([row]).splitlines()[-1] == \
        "| `conv` | 95.47 (71.05 + 24.42) | 89.85 +- 0.78 | 24 / 32 | 61 s, 512 MB |"


@pytest.mark.parametrize("heading, command", [("## Speed", "python benchmarks/tables.py speed")])
def test_the_readme_says_which_command_made_each_measured_table(heading, command):
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    assert "|---" in section and command in section
    assert re.search(r"\d-core|AMD|Intel", section), f"{heading}: on which machine?"


def test_the_readme_quotes_the_recipe_page_s_measured_preset():
    """The README's "best hour" figures are docs/recipes.md's, which says how they were measured."""
    section = README.split("## Evaluate, sample, reconstruct", 1)[1].split("\n## ", 1)[0]
    recipes = (ROOT / "docs" / "recipes.md").read_text()
    nll = re.search(r"nll (\d+\.\d+ \+- \d+\.\d+)", section).group(1)
    assert nll in recipes and "--preset best" in section and "--k 1000" in section
