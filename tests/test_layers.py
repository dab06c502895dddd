"""The layers of qa/, kept by a check: no import cycle, no stage importing one to its right, no
store backend importing another, no private name imported from another module.

Every import counts, wherever it is written: at the top, inside a function (the lazy imports that
keep `qa --help` light), or under TYPE_CHECKING. The modules are read with `ast`, not imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

QA = Path(__file__).resolve().parent.parent / "qa"

# The pipeline, left to right: a module may import modules of its own layer or of a layer to its
# left, never one to its right. Within a layer, imports may go either way, but never round.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Usable by all: records, errors, settings, words, progress reporting.
    ("foundation", ("qa", "qa.types", "qa.errors", "qa.paths", "qa.config", "qa.text", "qa.progress")),
    ("ingest", ("qa.ingest", "qa.pdf")),
    ("chunk", ("qa.chunk",)),
    ("embed", ("qa.embed", "qa.distributed")),
    # The store protocol, its registry and locations, and every backend (qa.stores.*).
    ("stores", ("qa.stores",)),
    # What writes to a store: updates (`qa index`) and copies (`--from-store`).
    ("index", ("qa.indexer", "qa.migrate")),
    # What reads from a store to rank passages: fusion of signals, token alignment, follow-ups,
    # mistyped words.
    ("retrieve", ("qa.fusion", "qa.align", "qa.retrieve", "qa.followup", "qa.spelling")),
    # Answers (quoted, or written by a model and checked), and their measurement.
    ("answer", ("qa.answer", "qa.claims", "qa.llm", "qa.generate", "qa.evaluate")),
    ("render", ("qa.pages", "qa.render")),
    # The commands, and what runs beside them: the HTTP and MCP servers, the folder watcher.
    ("repl/cli", ("qa.repl", "qa.cli", "qa.service", "qa.serve", "qa.mcp_server", "qa.watch")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(QA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(QA.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index in LAYERS of the layer holding `module` (a package's layer holds its submodules)."""
    best: tuple[int, int] | None = None
    for number, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or (member != "qa" and module.startswith(member + ".")):
                if best is None or len(member) > best[1]:
                    best = (number, len(member))
    assert best is not None, f"{module} is in no layer of tests/test_layers.py: add it where it belongs"
    return best[0]


def imports(module: str) -> list[tuple[str, str, int]]:
    """(imported qa module, imported name or "", line) for every import in `module`, anywhere in it."""
    found: list[tuple[str, str, int]] = []
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] == "qa"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}:{node.lineno}: use absolute imports (from qa.… import …)"
            if node.module is None or node.module.split(".")[0] != "qa":
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in MODULES:  # `from qa.stores import base` imports the module itself
                    found.append((submodule, "", node.lineno))
                else:
                    found.append((node.module, alias.name, node.lineno))
    return found


GRAPH = {module: sorted({target for target, _, _ in imports(module) if target != module}) for module in MODULES}


def test_every_import_names_a_module_of_qa() -> None:
    unknown = [f"{module} imports {target}" for module, targets in GRAPH.items() for target in targets
               if target not in MODULES]
    assert unknown == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in GRAPH.get(module, []):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in GRAPH:
        if module not in state:
            visit(module)
    assert [" -> ".join(cycle) for cycle in cycles] == []


def test_no_module_imports_a_stage_to_its_right() -> None:
    wrong = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert wrong == []


def backend_of(module: str) -> str | None:
    """The store backend subpackage a module belongs to ("qa.stores.local"), or None."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[:2] == ["qa", "stores"] and (QA / "stores" / parts[2] / "__init__.py").is_file():
        return ".".join(parts[:3])
    return None


def test_backends_import_no_other_backend_and_the_seam_imports_none() -> None:
    backends = {backend_of(module) for module in MODULES} - {None}
    assert {"qa.stores.local", "qa.stores.milvus"} <= backends
    wrong = []
    for module, targets in GRAPH.items():
        for target in targets:
            theirs = backend_of(target)
            if theirs is None or theirs == backend_of(module):
                continue
            # A backend is reached only through the registry (qa.stores.backend), never by name.
            wrong.append(f"{module} imports {target}, of the backend {theirs}")
    assert wrong == []


def test_no_private_name_is_imported_from_another_module() -> None:
    wrong = [
        f"{module}:{line} imports {name} from {target}"
        for module in MODULES
        for target, name, line in imports(module)
        if name.startswith("_") and target != module
    ]
    assert wrong == []


def test_no_store_kind_branches_outside_the_stores() -> None:
    """Which backend serves a location is the registry's business: no `kind == "milvus"` elsewhere."""
    wrong = []
    for module, path in MODULES.items():
        if module == "qa.stores" or module.startswith("qa.stores."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(
                isinstance(side, ast.Attribute) and side.attr == "kind" for side in [node.left, *node.comparators]
            ):
                wrong.append(f"{module}:{node.lineno}")
    assert wrong == []
