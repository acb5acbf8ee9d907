"""The layer order of ``docs/architecture.md`` holds in the code: a package imports only
from its own layer and the layers before it, and the shared helpers live once."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "labelbridge"

#: Layer of each top-level module or package; a module may import from layers <= its own.
#: Shared utilities (-1) import no layer.
LAYERS: dict[str, float] = {
    "constants": -1,
    "errors": -1,
    "files": -1,
    "locks": -1,
    "progress": -1,
    "sharding": -1,
    "threads": -1,
    "yamlio": -1,
    "taxonomy": 0,
    # the demo world renders numpy scenes and writes taxonomies: taxonomy + shared helpers
    "world": 0,
    "viz": 0.5,
    "config": 0.5,
    "data": 1,
    "models": 2,
    "engine": 3,
    "evaluation": 3,
    "distill": 3.5,  # extends the training engine (engine), used by the CLI
    "pseudo": 4,
    "suggest": 4,
    "pipeline": 5,
    "demo": 5,
    "cli": 6,
    "__main__": 6,  # python -m labelbridge: the CLI
}


def _labelbridge_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.startswith("labelbridge.")]
    return found


def test_every_module_is_placed_in_a_layer() -> None:
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SRC.rglob("*.py")}
    assert tops - {"__init__"} <= set(LAYERS), sorted(tops - {"__init__"} - set(LAYERS))


def test_no_module_imports_a_later_layer() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        own = LAYERS.get(rel.parts[0].removesuffix(".py"))
        if own is None:
            continue
        for line, name in _labelbridge_imports(path):
            other = LAYERS.get(name.split(".")[1])
            if other is not None and other > own:
                wrong.append(f"{rel}:{line} imports {name}")
    assert wrong == []


def test_one_module_moves_files_into_place() -> None:
    """Every atomic write goes through ``labelbridge.files`` (one fsync policy)."""
    movers = sorted(
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "os.replace(" in (text := p.read_text(encoding="utf-8")) or ".replace(path)" in text
    )
    assert movers == ["files.py"]


def test_the_taxonomy_layer_loads_without_torch() -> None:
    """Reading taxonomies and mappings (``labelbridge taxonomies``, ``ontology check``)
    does not pay for torch; the priors operation is imported on its own."""
    code = "import sys, labelbridge.taxonomy; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
