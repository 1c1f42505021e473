"""Reading a chapter on Google Colab: the setup cell every chapter starts with.

A notebook opened on Colab has neither this package nor the repository's `results/` and
`configs/` beside it. Every chapter's first cell (hidden in the book) is `SETUP_CELL`: on
Colab it clones the repository (`gpm_core.REPO_URL`, or `$GPM_REPO_URL`), then calls
`setup`, which installs the clone editable, enters it and turns downloads on; anywhere
else it does nothing. The cell is generated from this module, and
`python -m gpm_core.colab --write` rewrites it in every chapter after a change here
(`tests/test_colab.py` fails while a chapter's copy differs).

    python -m gpm_core.colab --write [CHAPTER.py ...]   # default: every book/*.py with cells
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from . import REPO_URL

CLONE_DIR = "gpm-book"  # the clone's folder, under the notebook's starting folder (/content)

# As short as it can be: every chapter must carry it (a notebook opened alone on Colab has no
# package to import it from), so it only clones and hands over to `setup`. GPM_REPO keeps the
# clone's absolute path for the next chapter of the same session, which starts inside it.
SETUP_CELL = f"""\
import os, subprocess, sys  # on Colab: clone the repository, install it, enter it (gpm_core/colab.py)
if "google.colab" in sys.modules:
    repo = os.environ.setdefault("GPM_REPO", os.path.abspath("{CLONE_DIR}"))
    os.path.isdir(repo) or subprocess.run(["git", "clone", "-q", "--depth", "1", os.environ.get("GPM_REPO_URL", "{REPO_URL}"), repo], check=True)
    sys.path.insert(0, repo); __import__("gpm_core.colab").colab.setup(repo)"""

SETUP_TAGS = ["remove-cell"]


def setup(repo: str | Path) -> Path:
    """Install the clone at `repo` editable (`pip install -e`, with the `colab` extra: myst-nb
    for `glue`), enter it (os.chdir), and set GPM_DOWNLOAD=1 so that torchvision downloads
    MNIST, FashionMNIST, CIFAR and Omniglot into GPM_DATA (default ~/.cache/gpm_core/data)
    when a chapter first needs them. Returns the repository's path. Safe to call again."""
    repo = Path(repo).resolve()
    if not (repo / "gpm_core" / "colab.py").exists():
        raise FileNotFoundError(f"{repo} is not a clone of {REPO_URL}: delete it and run the cell again")
    stamp = repo / ".colab-installed"
    if not stamp.exists():
        # --no-build-isolation: setuptools is already there, so nothing is fetched but the extra
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                        "-e", f"{repo}[colab]"], check=True)
        stamp.touch()
    os.chdir(repo)
    os.environ["GPM_DOWNLOAD"] = "1"
    return repo


def _cell_range(lines: list[str]) -> tuple[int, int]:
    """(first, end) line indices of the first code cell of a jupytext percent file."""
    first = next(i for i, line in enumerate(lines) if line.startswith("# %%"))
    end = next((i for i in range(first + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    while end > first + 1 and not lines[end - 1].strip():
        end -= 1
    return first, end


def chapter_setup_cell(py: Path) -> str:
    """The source of the first cell of chapter `py` (a jupytext percent file)."""
    lines = py.read_text().splitlines()
    first, end = _cell_range(lines)
    return "\n".join(lines[first + 1:end])


def write_setup_cell(py: Path) -> None:
    """Replace the first cell of chapter `py` and of its paired .ipynb by SETUP_CELL (the
    notebook's other cells and their outputs are kept)."""
    lines = py.read_text().splitlines()
    first, end = _cell_range(lines)
    lines[first:end] = [f"# %% tags={json.dumps(SETUP_TAGS)}", *SETUP_CELL.splitlines()]
    py.write_text("\n".join(lines) + "\n")
    ipynb = py.with_suffix(".ipynb")
    if ipynb.exists():
        nb = json.loads(ipynb.read_text())
        cell = nb["cells"][0]
        cell.update(cell_type="code", source=SETUP_CELL.splitlines(keepends=True), outputs=[],
                    execution_count=None)
        cell["metadata"]["tags"] = SETUP_TAGS
        ipynb.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")  # as nbformat writes


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "--write":
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    book = Path(__file__).resolve().parent.parent / "book"
    paths = [Path(a) for a in args[1:]] or sorted(p for p in book.glob("*.py") if "# %%" in p.read_text())
    for py in paths:
        write_setup_cell(py)
        print(f"setup cell written: {py}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
