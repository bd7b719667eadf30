"""The import graph of the library is the layer diagram of ARCHITECTURE.md, and it has no cycles.

Every ``import`` counts, also one inside a function: an import moved into a function to dodge a cycle
still makes one. The diagram is read from ARCHITECTURE.md (the first fenced block under "## Layers"), so the
document cannot drift from the code: each line names directories or files of one layer, top to bottom,
and a module may import only from its own layer or the layers below it.
"""
from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
# directories whose modules the test reads, and the package name each is installed under
PACKAGES = {"dtorch": "dtorch", "launcher": "dtorch.launcher", "jobs": "dtorch.jobs"}


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _skipped_blocks(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (those imports never run)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str, path: pathlib.Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file that names a module of ours."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _skipped_blocks(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for t in targets:
            for top, installed in PACKAGES.items():  # `import launcher.x` from a checkout
                if t == top or t.startswith(top + ".") and installed != top:
                    t = installed + t[len(top):]
            while t and t not in known:  # `import dtorch.nn.functional as F` names a module; attributes do not
                t = t.rpartition(".")[0]
            if t and t != name and (t, node.lineno) not in out:
                out.append((t, node.lineno))
    return out


def _graph() -> dict[str, list[tuple[str, int]]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target, _ in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _layers() -> list[list[tuple[str, bool]]]:
    """The diagram: per line (top to bottom) the (module name, whole package?) pairs of that layer."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = re.search(r"\n## Layers\n.*?```[a-z]*\n(.*?)```", text, re.S)
    assert block, "ARCHITECTURE.md has no fenced block under '## Layers'"
    layers = []
    for line in block.group(1).splitlines():
        paths = []
        for token in line.split():
            if not re.fullmatch(r"[\w./*]+(/|\.py)", token):
                break
            paths.append(token)
        if paths:
            layers.append([_prefix(p) for p in paths])
    return layers


def _prefix(path: str) -> tuple[str, bool]:
    """'dtorch/nn/' -> ('dtorch.nn', True): the package and all below; 'dtorch/__init__.py' -> ('dtorch', False)."""
    whole = path.endswith("/")
    p = path.rstrip("/")
    p = p[:-3] if p.endswith(".py") else p
    parts = p.split("/")
    parts[0] = PACKAGES.get(parts[0], parts[0])
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts), whole


def _layer_of(module: str, layers: list[list[tuple[str, bool]]]) -> int | None:
    """The layer of the most specific diagram entry naming ``module``."""
    best, best_len = None, -1
    for i, entries in enumerate(layers):
        for prefix, whole in entries:
            hit = module == prefix or (whole and module.startswith(prefix + "."))
            if hit and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    return best


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (function-local imports count):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_every_module_has_a_layer_in_the_diagram() -> None:
    layers = _layers()
    missing = [m for m in _modules() if _layer_of(m, layers) is None]
    assert not missing, f"modules that no line of ARCHITECTURE.md's layer diagram names: {missing}"


def test_imports_flow_down_the_diagram() -> None:
    layers = _layers()
    mods = _modules()
    wrong = []
    for name, edges in _graph().items():
        here = _layer_of(name, layers)
        for target, line in edges:
            there = _layer_of(target, layers)
            if here is not None and there is not None and there < here:
                wrong.append(f"{mods[name].relative_to(ROOT)}:{line} ({name}, layer {here + 1}) imports {target} "
                             f"(layer {there + 1}, above it)")
    assert not wrong, "imports that flow up ARCHITECTURE.md's layer diagram:\n" + "\n".join(wrong)


def test_the_checker_sees_a_cycle_and_a_function_local_import() -> None:
    graph = {"a": [("b", 1)], "b": [("c", 2)], "c": [("a", 3)], "d": [("a", 4)]}
    assert _cycles(graph) == [["a", "b", "c"]]
    known = {"dtorch.x", "dtorch.y"}
    src = ROOT / "tests" / "_layers_probe.py"
    try:
        src.write_text("def f():\n    from dtorch import y\n", encoding="utf-8")
        assert _imports("dtorch.x", src, known) == [("dtorch.y", 2)]
    finally:
        src.unlink()


def test_the_diagram_reader_takes_the_most_specific_entry() -> None:
    layers = [[_prefix("dtorch/__init__.py")], [_prefix("dtorch/nn/parallel/")], [_prefix("dtorch/nn/")],
              [_prefix("dtorch/tensor.py")]]
    assert _layer_of("dtorch", layers) == 0
    assert _layer_of("dtorch.nn.parallel.distributed", layers) == 1
    assert _layer_of("dtorch.nn.modules.linear", layers) == 2
    assert _layer_of("dtorch.tensor", layers) == 3
    assert _layer_of("dtorch.optim", layers) is None  # `dtorch/__init__.py` names the package module only
