"""The layout rules of the README: the math never imports the pipeline (but `models` reads
`config`), the pipeline never imports analyses/ or report/, report/ never imports analyses/,
no import circles, package imports at the top of files, and no Part II chapter defines a
function or class."""

from __future__ import annotations

import ast

import pytest

from conftest import REPO

PACKAGE = REPO / "gpm_core"
MATH = {"pinv", "gpm", "dkm", "nets", "likelihoods", "models", "corruptions"}
PIPELINE = {"config", "datasets", "episodes", "runs", "train", "evaluate", "artifacts", "baselines"}
PART_II = ["07_table1", "08_reconstructions", "09_denoising", "10_attractor_dynamics", "11_capacity",
           "12_running_time", "13_real_valued", "status"]


def _modules() -> dict[str, ast.Module]:
    """Dotted name below gpm_core ("report.capacity", "report" for its __init__) -> AST."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"
        out[name] = (ast.parse(path.read_text()), path.name == "__init__.py")
    return out


def _imports(name: str, tree: ast.Module, is_package: bool) -> list[tuple[str, int]]:
    """The gpm_core modules `name` imports, with the column of each import statement."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)] + ([node.module] if node.module else [])
            targets = [".".join(base + [a.name]) for a in node.names] + [".".join(base)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gpm_core"):
            base = node.module.split(".")[1:]
            targets = [".".join(base + [a.name]) for a in node.names] + [".".join(base)]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".", 1)[1] for a in node.names if a.name.startswith("gpm_core.")]
        else:
            continue
        found += [(t, node.col_offset) for t in targets if t]
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {t for t, _ in _imports(name, tree, pkg) if t in mods and t != name}
            for name, (tree, pkg) in mods.items()}


def test_package_imports_sit_at_the_top():
    for name, (tree, pkg) in _modules().items():
        inner = [t for t, col in _imports(name, tree, pkg) if col > 0]
        assert not inner, f"gpm_core.{name} imports {inner} inside a function; import at the top"


def test_layers(graph):
    for name, deps in graph.items():
        top = name.split(".")[0]
        if top in MATH:
            assert not {d for d in deps if d.split(".")[0] not in MATH} - {"config"}, (name, deps)
        if top in PIPELINE:
            assert not {d for d in deps if d.split(".")[0] in ("analyses", "report")}, (name, deps)
        if top == "report":
            assert not {d for d in deps if d.split(".")[0] == "analyses"}, (name, deps)


def test_no_import_circles(graph):
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for dep in graph.get(node, ()):
            assert state.get(dep) != 1, f"import circle: {' -> '.join(path + [dep])}"
            if not state.get(dep):
                visit(dep, path + [dep])
        state[node] = 2

    for node in graph:
        if not state.get(node):
            visit(node, [node])


@pytest.mark.parametrize("chapter", PART_II)
def test_part_ii_chapters_define_no_functions(chapter):
    source = (REPO / "book" / f"{chapter}.py").read_text()
    # the notebooks' shell escapes ("!pip ...", also commented out) are not Python: make them
    # `pass` statements, so that the Colab block still has a body
    lines = [line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("!", "# !")) else line
             for line in source.splitlines()]
    tree = ast.parse("\n".join(lines))
    defined = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    assert not defined, f"book/{chapter}.py defines {defined}; move them to gpm_core.report"
