"""The layers of docs/architecture.md hold: every import in dnafm_lib goes down the layer order."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dnafm_lib"

# layer → the layers it may import (docs/architecture.md)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "model": {"core"},
    "data": {"core", "model"},
    "train": {"core", "model", "data"},
    "finetune": {"core", "model", "data"},
    "inference": {"core", "model", "data", "finetune"},
    "workflow": {"core", "model", "data", "train", "finetune", "inference"},
    "commands": {"core", "model", "data", "train", "finetune", "inference", "workflow"},
    "cli": {"core", "commands"},
    "__main__": {"cli"},
}


def layer_of(module: str) -> str:
    """``dnafm_lib.data.fasta`` → ``data``; the package root itself → ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every ``dnafm_lib`` module a file imports (names imported from a package count as modules)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("dnafm_lib")]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, f"<relative import {'.' * node.level}{node.module or ''}>"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dnafm_lib"):
            found.append((node.lineno, node.module))
            found += [
                (node.lineno, f"{node.module}.{alias.name}") for alias in node.names if alias.name.startswith("_")
            ]
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent)
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        layer = layer_of(module)
        for line, target in imports_of(path):
            where = f"{rel}:{line}: imports {target}"
            if target.startswith("<relative"):
                problems.append(f"{where} (write imports absolute, so the layer is visible)")
                continue
            target_layer = layer_of(target)
            if target_layer == "" or target == "dnafm_lib.__version__":
                continue  # the public contract and the version: anyone may use them
            if layer and target_layer != layer and target_layer not in ALLOWED.get(layer, set()):
                problems.append(f"{where} (layer {layer} may import {sorted(ALLOWED.get(layer, set()))})")
            private = [part for part in target.split(".")[2:] if part.startswith("_") and part != "__version__"]
            if private and target_layer != layer:
                problems.append(f"{where} (a module or name beginning with _ is internal to its layer)")
    return problems


def test_every_module_belongs_to_a_documented_layer():
    documented = (PACKAGE.parent / "docs/architecture.md").read_text()
    layers = {layer_of(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    layers -= {"__init__"}  # the package root: the public contract
    assert layers <= set(ALLOWED), f"packages without a layer rule: {sorted(layers - set(ALLOWED))}"
    for layer in set(ALLOWED) - {"__main__"}:
        assert f"`{layer}" in documented, f"docs/architecture.md does not describe the layer {layer}"


def test_imports_go_down_the_layers():
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path):
    # the same check over a copy of one data module that reaches up into inference
    bad = tmp_path / "dnafm_lib" / "data"
    bad.mkdir(parents=True)
    (bad / "fasta.py").write_text("from dnafm_lib.inference.tracks import catalog\nfrom . import gff\n")
    (tmp_path / "dnafm_lib" / "commands").mkdir()
    (tmp_path / "dnafm_lib" / "commands" / "x.py").write_text("from dnafm_lib.commands._masked_options import y\n")
    (tmp_path / "dnafm_lib" / "inference").mkdir()
    (tmp_path / "dnafm_lib" / "inference" / "y.py").write_text("from dnafm_lib.commands._masked_options import y\n")
    found = violations(tmp_path / "dnafm_lib")
    assert any("data/fasta.py:1: imports dnafm_lib.inference.tracks" in p for p in found)
    assert any("data/fasta.py:2" in p and "absolute" in p for p in found)
    assert any("inference/y.py:1: imports dnafm_lib.commands._masked_options" in p for p in found)
    assert not any("commands/x.py" in p for p in found)  # within its own layer an internal module is fine
