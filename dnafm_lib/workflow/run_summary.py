"""What a workflow run tells on the terminal: one line per finished job with its key number,
and at the end where the tracks are and how to open them.

The workflow (workflow/rules/common.smk) calls ``job_line`` when Snakemake reports a job
finished, and ``tracks_summary`` from ``onsuccess``; both only read the jobs' outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from dnafm_lib.inference.tracks import catalog
from dnafm_lib.model.trained_context import CONTEXT_FIELD


def _read_json(path: Path) -> dict:
    with open(path) as handle:
        return json.load(handle)


def _find(outputs: Sequence[str], name: str) -> Path | None:
    return next((Path(p) for p in outputs if Path(p).name == name), None)


def _prepare_genome(outputs, wildcards) -> str:
    record = _read_json(_find(outputs, "provenance.json"))
    return f"prepared {wildcards['genome']}: {record['n_records']:,} records, {record['total_nt']:,} nt"


def _score_chunk(outputs, wildcards) -> str:
    with np.load(outputs[0], allow_pickle=False) as chunk:
        loss = chunk["mlm_loss"]
        scored = np.isfinite(loss)
        mean = float(loss[scored].mean()) if scored.any() else float("nan")
    return (
        f"scored {wildcards['genome']}/{wildcards['model']} {wildcards['chunk']}: {int(scored.sum()):,} bases, "
        f"mean MLM loss {mean:.3f} nats"
    )


def _gather_tracks(outputs, wildcards) -> str:
    path = _find(outputs, "tracks.json")
    summary = _read_json(path)
    return (
        f"tracks {wildcards['genome']}/{wildcards['model']}: {summary['scored_bp']:,} bases scored, "
        f"{len(summary['tracks'])} tracks in {path.parent}/"
    )


def _pretrain_model(outputs, wildcards) -> str:
    summary = _read_json(_find(outputs, "summary.json"))
    line = f"pretrained {wildcards['run']}: step {summary['final_step']}"
    if summary.get("validation_loss_nats") is not None:
        line += f", validation loss {summary['validation_loss_nats']:.4f} nats"
    if summary.get("composition_entropy_nats") is not None:
        line += f" (base-composition entropy {summary['composition_entropy_nats']:.4f} nats)"
    return line


def _export_model(outputs, wildcards) -> str:
    config_path = _find(outputs, "config.json")
    context = _read_json(config_path).get(CONTEXT_FIELD)
    return f"exported {wildcards['run']} to {config_path.parent}/" + (f" ({context}-token context)" if context else "")


def _compare_finetuning(outputs, wildcards) -> str:
    import csv

    with open(_find(outputs, "comparison.tsv"), newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    parts = [
        f"{row['initialisation']} accuracy {float(row['test_accuracy']):.3f}, MCC {float(row['test_mcc']):.3f}"
        for row in rows
    ]
    return "fine-tuned (test split): " + "; ".join(parts)


JOB_LINES = {
    "prepare_genome": _prepare_genome,
    "score_chunk": _score_chunk,
    "gather_tracks": _gather_tracks,
    "pretrain_model": _pretrain_model,
    "export_model": _export_model,
    "compare_finetuning": _compare_finetuning,
}


def job_line(rule: str, outputs: Sequence[str], wildcards: Mapping[str, str]) -> str | None:
    """One line with the key number of a finished job, or None for rules that have none.

    A summary is a courtesy: an output it cannot read gives no line rather than failing the run.
    """
    describe = JOB_LINES.get(rule)
    if describe is None:
        return None
    try:
        return describe(list(outputs), dict(wildcards))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def tracks_summary(results_dir: str | Path, tracks_dirs: Sequence[str | Path], port: int = 8000) -> str:
    """Where each genome's tracks are, the command that serves igv.html, and the IGV session files."""
    results = Path(results_dir)
    done = [Path(d) for d in tracks_dirs if (Path(d) / catalog.SUMMARY_JSON).exists()]
    if not done:
        return ""
    lines = ["Tracks (bigWig/BED, one folder per genome and model):"]
    lines += [f"  {d}/" for d in done]
    pages = [d / catalog.IGV_HTML for d in done if (d / catalog.IGV_HTML).exists()]
    if pages:
        lines += [
            "In a web browser (igv.js): serve the results folder, then open a page:",
            f"  python3 -m http.server -d {results} {port}",
        ]
        lines += [f"  http://localhost:{port}/{_relative(page, results)}" for page in pages]
    sessions = [d / catalog.IGV_SESSION_XML for d in done if (d / catalog.IGV_SESSION_XML).exists()]
    if sessions:
        lines += ["In IGV desktop: File > Open Session..."]
        lines += [f"  {session}" for session in sessions]
    return "\n".join(lines)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
