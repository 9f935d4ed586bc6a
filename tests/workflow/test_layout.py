"""The workflow's facts in one place: paths from dnafm_lib.workflow.layout (via common.smk), and
no stage file using a name that a file included after it defines."""

from __future__ import annotations

import re
from pathlib import Path

from dnafm_lib.workflow import layout
from dnafm_lib.workflow.layout import EXPORT, Layout

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "workflow" / "rules"


def included_files() -> list[Path]:
    """The workflow's files in the order Snakemake reads them (Snakefile, then its includes, nested)."""
    order = [REPO / "Snakefile"]
    for path in order:
        for name in re.findall(r'^include: "([^"]+)"', path.read_text(), flags=re.M):
            order.append((path.parent / name).resolve())
    # tracks.smk includes tracks_common.smk at its top, before its own definitions
    return order


def code_of(path: Path) -> str:
    """The file without comments and docstrings (words there are prose, not uses)."""
    text = re.sub(r'"""[\s\S]*?"""', "", path.read_text())
    return re.sub(r"#.*", "", text)


def defined_names(path: Path) -> set[str]:
    text = code_of(path)
    return set(re.findall(r"^([A-Za-z_]\w*) *=", text, flags=re.M)) | set(re.findall(r"^def (\w+)", text, flags=re.M))


def test_the_model_directory_rule():
    results = Layout("out/x")
    assert results.model_dir(EXPORT, "demo") == Path("out/x/models/demo")
    assert results.model_dir("/ckpt/AIDO.DNA-7B", "demo") == Path("/ckpt/AIDO.DNA-7B")
    assert results.split_manifest("train") == Path("out/x/shards/train.manifest.json")


def test_no_workflow_file_uses_a_name_defined_by_a_file_included_after_it():
    files = included_files()
    assert [p.name for p in files[:2]] == ["Snakefile", "common.smk"] and len(files) == len(set(files))
    late = []
    for position, path in enumerate(files):
        code = code_of(path)
        for later in files[position + 1 :]:
            if later.name == "tracks_common.smk" and path.name == "tracks.smk":
                continue  # tracks.smk includes it before anything of its own
            for name in defined_names(later) - defined_names(path):
                if re.search(rf"\b{name}\b", code):
                    late.append(f"{path.name} uses {name} of {later.name}")
    # The Snakefile's `rule all` and onsuccess run after every include: their names may come from anywhere.
    assert [entry for entry in late if not entry.startswith("Snakefile ")] == []


def test_stage_files_spell_no_file_or_folder_name_of_the_layout():
    names = {
        *layout.GENOME_FILES.values(),
        layout.GENOME_ANNOTATION,
        *layout.SHARD_FILES.values(),
        *layout.SPLITS_FILES.values(),
        *layout.DOWNLOAD_FILES.values(),
        "manifest.json",
    }
    folders = ["splits", "downloads", "genomes", "shards", "genome_batches", "pretrain", "models", "tracks"]
    spelled = []
    for path in sorted(RULES.glob("*.smk")):
        if path.name == "common.smk":
            continue
        code = code_of(path)
        spelled += [f"{path.name}: {name}" for name in names if f'"{name}' in code or f'/{name}"' in code]
        spelled += [f"{path.name}: RESULTS / {f!r}" for f in folders if re.search(rf'RESULTS\s*/\s*"{f}"', code)]
    assert spelled == []
