"""docs/derivations and the code cite each other: every result id is defined once, cited by the code,
and every id the code or the tests cite exists; every page names code that exists.

Convention (docs/derivations/README.md): an id like [LIN-2] is DEFINED where a line of a page
starts with it; anywhere else (in the docs, the code or the tests) it is a citation.
"""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "derivations"
ID = re.compile(r"\[([A-Z]+-\d+)\]")
DEFINITION = re.compile(r"^\[([A-Z]+-\d+)\]", re.MULTILINE)
CODE_REF = re.compile(r"`(scratchvae/[\w/]+\.py)::([\w.]+)`")


def pages():
    return sorted(p for p in DOCS.glob("*.md") if p.name != "README.md")


def definitions():
    """{id: [page name, ...]} over every page."""
    found = {}
    for page in pages():
        for id_ in DEFINITION.findall(page.read_text()):
            found.setdefault(id_, []).append(page.name)
    return found


def citations(*folders, suffixes=(".py",), skip=()):
    """{id: [file, ...]} for every id written in the files under folders."""
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in suffixes and path.is_file() and path.name not in skip:
                for id_ in ID.findall(path.read_text()):
                    found.setdefault(id_, []).append(str(path.relative_to(ROOT)))
    return found


def qualnames(path):
    """Every 'Class', 'Class.method' and 'function' defined at module or class level in path."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}.{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return names


def test_there_are_pages_and_the_index_links_every_page():
    index = (DOCS / "README.md").read_text()
    assert len(pages()) >= 12
    for page in pages():
        assert f"]({page.name})" in index, f"README.md does not link {page.name}"


def test_every_id_is_defined_exactly_once():
    defs = definitions()
    assert defs
    twice = {id_: where for id_, where in defs.items() if len(where) > 1}
    assert not twice, f"ids defined more than once: {twice}"


def test_every_page_defines_ids():
    for page in pages():
        assert DEFINITION.search(page.read_text()), f"{page.name} defines no id"


def test_every_id_cited_anywhere_is_defined():
    defs = definitions()
    cited = citations("scratchvae", "tests", skip={"test_derivations.py"})
    for page in [*pages(), DOCS / "README.md"]:
        for id_ in ID.findall(page.read_text()):
            cited.setdefault(id_, []).append(f"docs/derivations/{page.name}")
    undefined = {id_: where for id_, where in cited.items() if id_ not in defs}
    assert not undefined, f"ids cited but defined in no page of docs/derivations: {undefined}"


def test_every_defined_id_is_cited_by_the_code():
    in_code = citations("scratchvae")
    uncited = sorted(set(definitions()) - set(in_code))
    assert not uncited, f"ids defined in docs/derivations that no docstring or comment in scratchvae/ cites: {uncited}"


def test_every_page_names_code_that_exists():
    for page in pages():
        refs = CODE_REF.findall(page.read_text())
        assert refs, f"{page.name} names no `scratchvae/...py::function`"
        for rel, name in refs:
            path = ROOT / rel
            assert path.is_file(), f"{page.name}: {rel} does not exist"
            assert name in qualnames(path), f"{page.name}: {rel} defines no {name}"
