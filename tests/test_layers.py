"""The client stands alone: importing it (and the reference agent) loads no
pymongo and no server-side module, so an agent's host needs neither."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SERVER_SIDE = ("pymongo", "genconf.store", "genconf.readside", "genconf.api", "genconf.security")


def loaded_by(module: str) -> list[str]:
    """Server-side modules a fresh interpreter holds after importing ``module``."""
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({SERVER_SIDE!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(out.stdout))


def test_the_client_loads_no_server_code() -> None:
    assert loaded_by("genconf.client") == []


def test_the_agent_loads_no_server_code() -> None:
    assert loaded_by("genconf.agent.runner") == []


def test_the_check_can_fail() -> None:
    """The same check over the server module does see them (it is not vacuous)."""
    found = loaded_by("genconf.api.server")
    assert "pymongo" in found and "genconf.store.store" in found


# -- the layering contract ----------------------------------------------------------

SERVICE = Path(__file__).resolve().parent.parent / "service" / "genconf"
CLIENT_SIDE = "client"  # the client: beside the server's layers, not above them
TOP = 7  # the command line and the agent: nothing imports them
# Each package's (or leaf module's) layer; a module may import its own layer and
# those below. The client may import only layers 0 and 1; "side" packages (dev
# tools, benchmarks) may import anything, and only the CLI and other side modules
# import them.
LAYERS: dict[str, int | str] = {
    **dict.fromkeys(
        ["genconf", "errors", "logs", "addresses", "defaults", "backoff", "signals", "workers"], 0
    ),
    **dict.fromkeys(["domain", "wire", "shapes"], 1),
    "security": 2,
    "store": 3,
    "readside": 4,
    # The rollout driver: reads the cache, writes through the store; api/ serves it.
    "rollout": 5,
    "api": 6,
    # HTTP beside gRPC: its routes call api/'s servicers through api/'s gate, and
    # api/server.py starts it (same layer: one may import the other, no cycle).
    "http": 6,
    "client": CLIENT_SIDE,
    **dict.fromkeys(["cli", "agent"], TOP),
    **dict.fromkeys(["bench", "dev"], "side"),
    "domain.values": 0,  # ABSENT and how a value reads: the error messages use it too
    "client.results": 1,  # a unit's Config as the client returns it: the JSON shapes use it
}
# Until `serve` takes the embedded MongoDB from its caller, the server starts it.
KNOWN = {("genconf.api.server", "genconf.dev.embedded")}


def layer_of(module: str) -> int | str:
    parts = module.split(".")
    if parts == ["genconf"]:
        return 0
    if parts[1] == "v1":
        return 0  # generated messages
    return LAYERS.get(".".join(parts[1:3]), LAYERS[parts[1]])


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """genconf modules imported by ``path``, lazily or not (type-checking blocks aside)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found.update(n for n in names if n in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {}
    for path in SERVICE.rglob("*.py"):
        parts = ("genconf", *path.relative_to(SERVICE).with_suffix("").parts)
        name = ".".join(parts).removesuffix(".__init__")
        if ".v1." not in f"{name}.":
            paths[name] = path
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def is_cli(module: str) -> bool:
    return module == "genconf.cli" or module.startswith("genconf.cli.")


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the layers, every import of the CLI, and every cycle."""
    out = []
    for module, deps in sorted(graph.items()):
        mine = layer_of(module)
        for dep in sorted(deps):
            theirs = layer_of(dep)
            if (module, dep) in KNOWN or dep == "genconf":
                continue
            if is_cli(dep) and not is_cli(module):
                out.append(f"{module} imports the command line ({dep})")
            elif mine == "side":
                continue
            elif theirs == "side":
                if mine != TOP:
                    out.append(f"{module} imports the side module {dep}")
            elif mine == CLIENT_SIDE:
                if theirs != CLIENT_SIDE and (not isinstance(theirs, int) or theirs > 1):
                    out.append(f"{module} (the client) imports {dep}")
            elif theirs == CLIENT_SIDE:
                if mine != TOP:
                    out.append(f"{module} (layer {mine}) imports the client ({dep})")
            elif isinstance(mine, int) and isinstance(theirs, int) and theirs > mine:
                out.append(f"{module} (layer {mine}) imports {dep} (layer {theirs})")
    out.extend(f"import cycle: {' -> '.join(c)}" for c in cycles(graph))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in import_graph():
        try:
            layer_of(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"put these in a layer in tests/test_layers.py: {unplaced}"


def test_imports_follow_the_layers_and_make_no_cycle() -> None:
    assert violations(import_graph()) == []


def test_the_contract_catches_a_violation() -> None:
    """The store importing the API, the agent importing the CLI, and a cycle."""
    graph = import_graph()
    graph["genconf.store.store"] = graph["genconf.store.store"] | {"genconf.api.guard"}
    graph["genconf.agent.runner"] = graph["genconf.agent.runner"] | {"genconf.cli.output"}
    graph["genconf.errors"] = graph["genconf.errors"] | {"genconf.domain.schema"}
    found = violations(graph)
    print("\n" + "\n".join(found))
    assert "genconf.store.store (layer 3) imports genconf.api.guard (layer 6)" in found
    assert "genconf.agent.runner imports the command line (genconf.cli.output)" in found
    assert any(line.startswith("import cycle:") and "genconf.errors" in line for line in found)


def test_the_cli_loads_no_server_code_until_it_serves() -> None:
    """Its parser takes the serve flags' defaults from genconf.defaults, so a client
    command does not pay for loading the server."""
    assert loaded_by("genconf.cli.main") == []
