"""The layout's promises, checked: pure modules stay pure, and imports form no cycle.

STYLE.md: "Pure modules stay pure, and a test says so: it imports them and checks that
``socket``, ``selectors``, ``ssl``, ``sqlite3``, ``time`` were not pulled in"; and the engine
imports the commands, never the reverse.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fastchat

ROOT = Path(fastchat.__file__).parent

#: The sans-I/O core: the protocol, the network state and its sequencer, rendering,
#: capabilities, commands, registration and the worker's engine; the client's session layer.
PURE = [
    "fastchat.irc.message",
    "fastchat.irc.linebuffer",
    "fastchat.irc.casemap",
    "fastchat.irc.numerics",
    "fastchat.server.config",
    "fastchat.server.connection",
    "fastchat.server.registration",
    "fastchat.server.network.records",
    "fastchat.server.network.state",
    "fastchat.server.network.sequencer",
    "fastchat.server.render.lines",
    "fastchat.server.render.replies",
    "fastchat.server.render.variants",
    "fastchat.server.render.dates",
    "fastchat.server.caps",
    "fastchat.server.commands",
    "fastchat.server.engine.core",
    "fastchat.client.capabilities",
    "fastchat.client.session",
]
FORBIDDEN = ("socket", "selectors", "ssl", "sqlite3", "time")

# ``time`` is imported while the interpreter starts (by zipimport), so the probe forgets it
# first: any module that imports it then brings it back into sys.modules.
_PROBE = """
import sys
sys.path.insert(0, {root!r})
for name in {forbidden!r}:
    sys.modules.pop(name, None)
import {module}
print(",".join(sorted(n for n in {forbidden!r} if n in sys.modules)))
"""


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_pull_in_no_io(module: str) -> None:
    """A pure module, with everything it imports, loads no socket, selector, TLS, SQLite or
    clock module (``-I -S``: no site packages, nothing imported on our behalf)."""
    code = _PROBE.format(root=str(ROOT.parent), forbidden=FORBIDDEN, module=module)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def _imports(path: Path, module: str, runtime_only: bool) -> set[str]:
    """The fastchat modules ``path`` imports (``TYPE_CHECKING`` blocks too, unless
    ``runtime_only``)."""
    tree = ast.parse(path.read_text())
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if runtime_only and id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("fastchat"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base.startswith("fastchat"):
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _graph(runtime_only: bool) -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        modules[name] = path
    return {
        name: {m for m in _imports(path, name, runtime_only) if m in modules and m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)) is not None:
            return found
    return None


def test_module_imports_form_no_cycle() -> None:
    """No module of fastchat imports, at run time, one that imports it back."""
    graph = _graph(runtime_only=True)
    # a package's __init__ importing its own submodules is how a package is built, not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert _cycle(graph) is None


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3]) if parts[:2] == ["fastchat", "server"] else ".".join(parts[:2])


def test_packages_form_layers() -> None:
    """Counting type-only imports too, the packages form layers (irc ← network ← render,
    caps ← commands ← engine ← runtime; store beside runtime): the engine imports the
    commands, never the reverse, nothing below imports what is above, and the pure core
    never imports the store."""
    graph: dict[str, set[str]] = {}
    for name, deps in _graph(runtime_only=False).items():
        graph.setdefault(_layer(name), set()).update(
            _layer(d) for d in deps if _layer(d) != _layer(name)
        )
    assert _cycle(graph) is None
    assert "fastchat.server.engine" not in graph["fastchat.server.commands"]
    assert "fastchat.server.runtime" not in graph["fastchat.server.engine"]
    # the store does I/O and runs threads: it sits with the runtime, above the pure core
    for pure in ("network", "render", "caps", "commands", "engine"):
        assert "fastchat.server.store" not in graph[f"fastchat.server.{pure}"]
    assert (
        not {"fastchat.server.engine", "fastchat.server.runtime"} & graph["fastchat.server.store"]
    )
