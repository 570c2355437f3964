"""Which source files a piece of tedbench runs: the static import closure of its modules (dvc.yaml's code deps).

Every `import` and `from ... import` of a module is followed, also inside functions (lazy imports run when the
code runs), but not under `if TYPE_CHECKING:`; importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`.
Only the project's own packages are followed; installed packages are the environment, not the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "baselines", "tedrec")


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of a project module (`a/b.py` or `a/b/__init__.py`), or None for anything else."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, module: str) -> set[str]:
    """The absolute names of the modules `path` (module `module`) imports, submodule candidates included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)  # `from a import b` may import a.b
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def closure(modules: Iterable[str], root: Path = ROOT) -> list[Path]:
    """Every project source file that importing `modules` runs, sorted, relative to `root`."""
    seen: dict[str, Path] = {}
    pending = list(modules)
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # the parent packages run first
            prefix = ".".join(parts[:depth])
            if prefix in seen:
                continue
            path = module_file(prefix, root)
            if path is None:
                continue
            seen[prefix] = path
            pending.extend(imported_modules(path, prefix))
    return sorted({path.relative_to(root) for path in seen.values()})
