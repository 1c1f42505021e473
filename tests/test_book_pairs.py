"""Every book chapter is a jupytext pair: `book/NN_topic.py` (what authors edit) and
`book/NN_topic.ipynb` (what Colab opens, nbval executes and the book renders). The two
must hold the same cells, and the notebook must carry executed outputs."""

from pathlib import Path

import jupytext
import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
PY_CHAPTERS = sorted(p for p in BOOK.glob("*.py") if "# %%" in p.read_text())
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def test_book_has_chapters():
    assert PY_CHAPTERS, f"no jupytext chapters found in {BOOK}"


@pytest.mark.parametrize("py", PY_CHAPTERS, ids=lambda p: p.name)
def test_pair_in_sync(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `jupytext --to ipynb --execute book/{py.name}`"
    a, b = _cells(jupytext.read(py)), _cells(jupytext.read(ipynb))
    assert a == b, (
        f"{py.name} and {ipynb.name} differ: after editing the .py run "
        f"`rm book/{ipynb.name} && jupytext --to ipynb --execute book/{py.name}` (with --update, "
        f"jupytext keeps the old outputs)"
    )


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_py_pair_and_outputs(ipynb):
    assert ipynb.with_suffix(".py").exists(), f"{ipynb.name} has no paired .py"
    nb = jupytext.read(ipynb)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()
            and "remove-cell" not in c.metadata.get("tags", ())]
    unexecuted = [c.source.splitlines()[0] for c in code if c.get("execution_count") is None]
    assert not unexecuted, f"{ipynb.name} has cells that were never executed: {unexecuted[:3]}"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{ipynb.name} has an error output committed"
