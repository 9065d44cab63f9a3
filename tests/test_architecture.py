"""The stages import only downstream: the layer contract in pyproject.toml."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = REPO_ROOT / "src" / "mlwright"
DEFERRED = "# deferred:"


def test_the_stage_layers_hold(monkeypatch):
    from importlinter import cli as lint

    monkeypatch.chdir(REPO_ROOT)
    # Exit code 0: every contract kept (the report names the offending import chain otherwise).
    assert lint.lint_imports(config_filename="pyproject.toml", no_cache=True, no_logo=True) == 0


def test_the_layers_are_the_documented_ones():
    import tomllib

    contract = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = contract["contracts"][0]["layers"]
    page = (REPO_ROOT / "docs" / "architecture.md").read_text()
    for layer in layers:
        for stage in layer.split("|"):
            assert f"`{stage.strip()}`" in page, stage


def test_the_public_api_is_the_documented_one():
    import re

    import mlwright

    page = (REPO_ROOT / "docs" / "architecture.md").read_text()
    section = page[page.index("## The public API") :]
    documented = set(re.findall(r"^\| `mlwright\.(\w+)` \|", section, re.MULTILINE))
    assert documented == set(mlwright.__all__)


def _function_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def _undeclared_deferrals(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    imports = _function_level_imports(ast.parse(text, filename=str(path)))
    # An import that ends on the line above another starts the same run of imports.
    run_start = {node.end_lineno: node.lineno for node in imports}

    def declared(line: int) -> bool:
        if DEFERRED in lines[line - 1] or (line > 1 and DEFERRED in lines[line - 2]):
            return True
        return line - 1 in run_start and declared(run_start[line - 1])

    relative = path.relative_to(REPO_ROOT)
    return [
        f"{relative}:{node.lineno}: {lines[node.lineno - 1].strip()}"
        for node in imports
        if not declared(node.lineno)
    ]


def test_imports_inside_functions_say_why_they_are_deferred():
    # Issue 18: imports sit at the module top, unless one is deferred on purpose (an optional
    # or heavy dependency that a measured start-up does not pay, such as MLflow for
    # `mlwright --help`), with `# deferred: <reason>` on its line or the line above it (above
    # the first of a run of imports, for the run). Module-level `if TYPE_CHECKING:` is top.
    undeclared = [
        problem for path in sorted(SOURCE.rglob("*.py")) for problem in _undeclared_deferrals(path)
    ]
    assert not undeclared, (
        "Imports inside functions without a '# deferred: <reason>' comment; move each to the "
        "module top, or say on the line above why it waits:\n" + "\n".join(undeclared)
    )
