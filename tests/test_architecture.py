"""The package arrows ARCHITECTURE.md draws, checked on the source: a change that breaks one fails here.

UI and CLI call annotation and the job runner; both go through the store; `trainers/` imports nothing of
ours and runs in job processes. Every import counts, also those inside functions (a lazy import still ties
two modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("workbench", "annotation", "trainers")
# Modules allowed past about 500 lines, each with its reason.
LONG_MODULES: dict[str, str] = {}
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that `name` imports (a `from package import module` names the module)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {name: _imports(name, path, known) for name, path in sources.items()}


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_module_imports_itself_through_others():
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    inner = {m: {t for t in targets if not (m in PACKAGES or _is_within(t, m))} for m, targets in graph.items()}
    cycles = sorted(m for m in inner if m in _reaches(inner, m))
    assert not cycles, f"modules in an import cycle: {cycles}"


def test_trainers_import_nothing_of_ours():
    bad = {m: sorted(t for t in targets if not _is_within(t, "trainers"))
           for m, targets in _graph().items() if _is_within(m, "trainers")}
    assert not {m: t for m, t in bad.items() if t}, bad


def test_annotation_is_plain_python_over_the_store():
    """annotation/ keeps labeling logic: no trainers, no UI, no CLI, no Gradio; the store (and the one error base
    class) is its only way down."""
    graph = _graph()
    for module, targets in graph.items():
        if not _is_within(module, "annotation"):
            continue
        outside = sorted(t for t in targets if not (_is_within(t, "annotation") or _is_within(t, "workbench.store")
                                                    or t == "workbench.errors"))
        assert not outside, f"{module} imports {outside}"
        text = _sources()[module].read_text()
        assert "import gradio" not in text, f"{module} imports gradio"


def test_the_store_imports_nothing_above_it():
    for module, targets in _graph().items():
        if _is_within(module, "workbench.store"):
            outside = sorted(t for t in targets if not _is_within(t, "workbench.store") and t != "workbench.errors")
            assert not outside, f"{module} imports {outside}"


def test_modules_stay_short_enough_to_read():
    long = {m: n for m, p in _sources().items() if (n := len(p.read_text().splitlines())) > MAX_LINES
            and m not in LONG_MODULES}
    assert not long, f"modules over {MAX_LINES} lines without a stated reason: {long}"
