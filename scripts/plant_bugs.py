"""Plant one realistic bug at a time in a scratch copy of the repository and run the fast tests
of the module it touches; print (and append to OUT/results.jsonl) which tests fail.

    python scripts/plant_bugs.py [BUG ...]        # no names: every bug below

The repository itself is never edited: each bug is a one-line replacement in a fresh copy under
$TMPDIR/dnafm-planted. docs/testing.md records the results.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.gettempdir()) / "dnafm-planted"
OUT = Path(os.environ.get("PLANT_OUT", WORK.parent / "dnafm-planted-logs"))
FAST = "not slow and not slurm and not browser"
BUGS = {
    "token-labels-shifted": (
        "dnafm_lib/finetune/models.py",
        "out[row, 1 : 1 + values.numel()] = values",
        "out[row, : values.numel()] = values",
        [
            "tests/finetune/test_invariants.py",
            "tests/finetune/test_tasks.py",
            "tests/finetune/test_cli.py",
            "tests/finetune/test_metrics_json.py",
        ],
    ),
    "rc-not-normalised": (
        "dnafm_lib/inference/tracks/scoring.py",
        "self._finish(scores, summed / strands, fetch)",
        "self._finish(scores, summed, fetch)",
        ["tests/inference/test_tracks_invariants.py", "tests/inference/test_tracks.py"],
    ),
    "resume-at-step-0": (
        "dnafm_lib/train/loop.py",
        'step, tokens_seen = int(progress["step"]), int(progress.get("tokens_seen", 0))',
        'step, tokens_seen = 0, int(progress.get("tokens_seen", 0))',
        ["tests/train/test_invariants.py", "tests/train/test_loop.py", "tests/train/test_distributed.py"],
    ),
    "loss-per-micro-batch": (
        "dnafm_lib/train/loop.py",
        "(micro_loss * scale).backward()",
        "(micro_loss * ctx.world_size / max(batch.n_targets, 1)).backward()",
        ["tests/train/test_invariants.py", "tests/train/test_loop.py", "tests/train/test_distributed.py"],
    ),
    "replacement-moves-to-train": (
        "dnafm_lib/data/splits.py",
        "                split=entry.split,\n                line=entry.line,",
        '                split="train",\n                line=entry.line,',
        ["tests/data/test_splits_invariants.py", "tests/data/test_splits.py"],
    ),
    "untied-head-loads": (
        "dnafm_lib/model/model_dir.py",
        'raise CheckpointError(f"{where}: {key} differs from {TIED_KEYS[key]}, but the two are tied")',
        "pass",
        ["tests/data/test_download_invariants.py", "tests/model/test_model_dir.py", "tests/model/test_encoder.py"],
    ),
    "token-predictions-shifted": (
        "dnafm_lib/finetune/trainer.py",
        "return [probabilities[row, 1 : 1 + n] for row, n in enumerate(lengths)]",
        "return [probabilities[row, :n] for row, n in enumerate(lengths)]",
        [
            "tests/finetune/test_invariants.py",
            "tests/finetune/test_tasks.py",
            "tests/finetune/test_cli.py",
            "tests/finetune/test_metrics_json.py",
        ],
    ),
    "masking-chooses-n": (
        "dnafm_lib/train/data.py",
        "_MASKABLE[list(ACGT_IDS)] = True",
        "_MASKABLE[list(ACGT_IDS) + [10]] = True  # 10 = N",
        ["tests/train/test_invariants.py", "tests/train/test_data.py"],
    ),
    "random-base-not-uniform": (
        "dnafm_lib/train/data.py",
        "_ACGT[rng.integers(0, 4, size=random_positions.size)]",
        "_ACGT[rng.integers(0, 3, size=random_positions.size)]",
        ["tests/train/test_invariants.py", "tests/train/test_data.py"],
    ),
    "masks-same-every-step": (
        "dnafm_lib/train/data.py",
        "np.random.PCG64([int(stream), int(seed), int(step), int(sample_id)])",
        "np.random.PCG64([int(stream), int(seed), int(sample_id)])",
        ["tests/train/test_invariants.py", "tests/train/test_data.py"],
    ),
    "segments-span-gaps": (
        "dnafm_lib/inference/tracks/embeddings.py",
        "            and bins.start[j + 1] == bins.end[j]\n",
        "",
        ["tests/inference/test_tracks_invariants.py", "tests/inference/test_tracks.py"],
    ),
    "502-not-retried": (
        "dnafm_lib/data/http.py",
        "if response.status_code >= 500:",
        "if response.status_code in (500, 503, 504):",
        ["tests/data/test_download_invariants.py", "tests/data/test_ncbi.py"],
    ),
    "bin-sums-overwritten-at-window-edges": (
        "dnafm_lib/inference/tracks/scoring.py",
        "scores.bin_sums[first : first + n_bins] += sums.cpu().numpy()",
        "scores.bin_sums[first : first + n_bins] = sums.cpu().numpy()",
        ["tests/inference/test_tracks_invariants.py", "tests/inference/test_tracks.py"],
    ),
    "chunks-cut-too-small": (
        "dnafm_lib/inference/tracks/tiling.py",
        "filled += end - start",
        "filled += end + start",
        ["tests/inference/test_tracks_invariants.py", "tests/inference/test_tracks.py"],
    ),
    "failed-bigwig-kept": (
        "dnafm_lib/inference/tracks/writers.py",
        "self._atomic.__exit__(type(exc), exc, exc.__traceback__)",
        "self._atomic.__exit__(None, None, None)",
        ["tests/inference/test_tracks_invariants.py", "tests/inference/test_tracks.py"],
    ),
    "500-not-retried": (
        "dnafm_lib/data/http.py",
        "if response.status_code >= 500:",
        "if response.status_code > 500:",
        ["tests/data/test_download_invariants.py", "tests/data/test_ncbi.py"],
    ),
    "zip-takes-another-accession": (
        "dnafm_lib/data/ncbi.py",
        'if n.parts[:3] == ("ncbi_dataset", "data", accession) and n.suffix == ".fna"',
        'if n.parts[:2] == ("ncbi_dataset", "data") and n.suffix == ".fna"',
        ["tests/data/test_download_invariants.py", "tests/data/test_ncbi.py"],
    ),
    "zip-takes-cds-and-rna": (
        "dnafm_lib/data/ncbi.py",
        '            and not n.name.startswith(("cds_from_genomic", "rna"))\n',
        "",
        ["tests/data/test_download_invariants.py", "tests/data/test_ncbi.py"],
    ),
}


def run(name):
    path, old, new, tests = BUGS[name]
    if WORK.exists():
        shutil.rmtree(WORK)
    shutil.copytree(
        SRC, WORK, ignore=shutil.ignore_patterns(".git", "__pycache__", ".hypothesis", ".venv", "results", "mutants")
    )
    f = WORK / path
    text = f.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"{name}: the line to change occurs {text.count(old)} times in {path}; update BUGS")
    f.write_text(text.replace(old, new))
    env = {**os.environ, "PYTHONPATH": str(WORK), "OMP_NUM_THREADS": "1"}
    tests = [t for t in tests if (WORK / t).exists()]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *tests,
            "-m",
            FAST,
            "-q",
            "-p",
            "no:cacheprovider",
            "-rf",
            "--tb=no",
            "--timeout=600",
        ],
        cwd=WORK,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    failed = sorted(set(re.findall(r"^FAILED (\S+)", r.stdout, re.MULTILINE)))
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-300:]
    (OUT / f"{name}.log").write_text(r.stdout + r.stderr)
    return {"bug": name, "file": path, "tests_run": tests, "failed": failed, "summary": summary}


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "results.jsonl"
    for name in sys.argv[1:] or BUGS:
        res = run(name)
        with open(out, "a") as h:
            h.write(json.dumps(res) + "\n")
        print(json.dumps(res), flush=True)
