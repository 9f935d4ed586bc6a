"""Kill the tracks stage anywhere, run the same command again: the same files as an uninterrupted run.

Real Snakemake runs of `tracks_all` (a tiny model over a 3-kb genome) SIGKILLed as a process
group (Snakemake and its jobs) right after the chunk plan, during scoring, during the gather and
during the browser files; a finished chunk and then whole track folders are deleted too. Every
output of the genome x model folder is compared byte for byte with an uninterrupted run's,
except tracks.json, whose timestamps (ISO date-times: when it was written, when chunks were
scored) are left out of the comparison.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support import workflow as workflow_helpers
from tests.support.tracks import genome_with_gaps, save_tiny_model, write_fasta

REPO = Path(__file__).resolve().parents[2]
GENOME, MODEL = "gapped", "demo"  # "demo": the default config's model name, so no other model is merged in

pytestmark = pytest.mark.slow
# When provenance says a file was written or scored, and how fast: what two identical runs differ in.
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    fasta = write_fasta(root / "gapped.fa", genome_with_gaps())
    sheet = root / "genomes.tsv"
    sheet.write_text(
        f"genome\tsource\taccession\tlocation\tsplit\tannotation\n{GENOME}\tfile\tGCA_000000001.1\t{fasta}\ttrain\t\n"
    )
    model = save_tiny_model(root / "tiny")
    igv_js = root / "igv.min.js"
    igv_js.write_text("/* igv.js stand-in: the browser test loads the real one */")
    return {"sheet": sheet, "model": model, "igv_js": igv_js}


def cohort(root: Path, inputs: dict) -> Path:
    config = {
        "cohort": "resume_test",
        "results_dir": str(root / "results"),
        "logs_dir": str(root / "logs"),
        "genome_sheet": str(inputs["sheet"]),
        "splits": {"nt_list": None, "validation_genomes": 0, "test_genomes": 0, "replacements": {}},
        "tracks": {
            "genomes": [GENOME],
            "models": {MODEL: str(inputs["model"])},
            "chunk_bp": 1000,
            "window_bp": 200,
            "stride_bp": 100,
            "passes": 2,
            "batch_size": 16,
            "threads": 1,
            "n_clusters": 3,
            "bin_bp": 50,
            "igv_js": str(inputs["igv_js"]),
            "device": "cpu",
        },
    }
    path = root / "cohort.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", "tracks_all", "--configfile", str(config), "--cores", "2", "--nolock"]


def environment() -> dict:
    return workflow_helpers.env(OMP_NUM_THREADS="1")


def run_to_end(config: Path) -> str:
    done = subprocess.run(
        command(config), cwd=REPO, env=environment(), capture_output=True, text=True, timeout=1200, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr + done.stdout


def run_and_kill_when(config: Path, condition, what: str, timeout_s: float = 900) -> None:
    """Start the command in its own process group; SIGKILL the whole group once ``condition()``."""
    process = subprocess.Popen(
        command(config),
        cwd=REPO,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    try:
        while not condition():
            assert process.poll() is None, f"the run ended (exit {process.returncode}) before {what}"
            assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
            time.sleep(0.02)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=60)
    # Nothing of the group may survive to finish the work behind the rerun's back.
    deadline = time.monotonic() + 30
    while group_alive(process.pid):
        assert time.monotonic() < deadline, "processes of the killed run are still alive"
        time.sleep(0.1)


def group_alive(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def comparable(path: Path) -> bytes:
    if path.name != "tracks.json":
        return path.read_bytes()

    def drop_times(value):
        if isinstance(value, dict):  # throughput: measured speed, which differs from run to run
            return {k: "<measured>" if k == "throughput" else drop_times(v) for k, v in value.items()}
        if isinstance(value, list):
            return [drop_times(v) for v in value]
        return "<time>" if isinstance(value, str) and TIMESTAMP.match(value) else value

    return json.dumps(drop_times(json.loads(path.read_text())), sort_keys=True).encode()


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file of the genome x model folder (and the chunk plan); temp leftovers apart."""
    out = root / "results" / "tracks" / GENOME
    files = {p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")}
    return {str(p.relative_to(out)): hashlib.sha256(comparable(p)).hexdigest() for p in sorted(files)}


def leftover_temps(root: Path) -> list[Path]:
    return sorted(p for p in (root / "results" / "tracks").rglob(".tmp-*"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs):
    root = tmp_path_factory.mktemp("uninterrupted")
    run_to_end(cohort(root, inputs))
    files = digest(root)
    assert f"{MODEL}/mlm_loss.bw" in files and f"{MODEL}/igv.html" in files and "chunks.tsv" in files
    # The chunk files are temporary: gone after the gather.
    assert not any(name.startswith(f"{MODEL}/chunks/") for name in files)
    return files


def test_uninterrupted_runs_write_byte_identical_tracks(tmp_path, inputs, reference):
    """What the kill tests rely on: the bigWigs, BED, npy and browser files carry no timestamp."""
    run_to_end(cohort(tmp_path, inputs))
    assert digest(tmp_path) == reference


def test_killed_at_every_stage_boundary_and_rerun_ends_with_the_uninterrupted_files(tmp_path, inputs, reference):
    config = cohort(tmp_path, inputs)
    tracks = tmp_path / "results" / "tracks" / GENOME
    out, chunks = tracks / MODEL, tracks / MODEL / "chunks"
    logs = tmp_path / "logs"

    def finished_chunks():
        return sorted(chunks.glob("chunk*.npz")) if chunks.is_dir() else []

    # 1. Right after the chunk plan (the checkpoint) is written.
    run_and_kill_when(config, lambda: (tracks / "chunks.tsv").exists(), "chunk plan")
    n_chunks = len({line.split("\t")[0] for line in (tracks / "chunks.tsv").read_text().splitlines()[1:]})
    assert n_chunks >= 3

    # 2. During scoring: some chunks written, others not.
    run_and_kill_when(config, lambda: len(finished_chunks()) >= 1, "finished chunk")
    assert len(finished_chunks()) < n_chunks, "scoring had ended before the kill"
    # ... and a finished chunk deleted, as if its file were lost.
    finished_chunks()[0].unlink()

    # 3. During the gather: its first output under way, tracks.json (its last) not yet written.
    def gather_started():
        return out.is_dir() and any(p.name != "chunks" for p in out.iterdir())

    run_and_kill_when(config, gather_started, "gather output")
    assert not (out / "tracks.json").exists(), "the gather had ended before the kill"

    # 4. During the browser files.
    run_and_kill_when(
        config, lambda: (logs / "write_browser_files" / GENOME / f"{MODEL}.log").exists(), "browser files job"
    )

    run_to_end(config)
    assert digest(tmp_path) == reference
    assert leftover_temps(tmp_path) == []

    # 5. A deleted track file, then the genome x model folder (the chunk plan kept: the case that
    # ran gather_tracks with input "<TBD>"), then the genome's whole folder.
    (out / "mlm_loss.bw").unlink()
    log = run_to_end(config)
    assert "gather_tracks" in log and digest(tmp_path) == reference
    for folder in (out, tracks):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
        log = run_to_end(config)
        assert "score_chunk" in log and digest(tmp_path) == reference, folder
        assert leftover_temps(tmp_path) == []

    # Complete: the same command has nothing left to do.
    assert "Nothing to be done" in run_to_end(config)


def test_each_genome_is_complete_or_not_on_its_own(tmp_path, inputs):
    """Two genomes: losing one's track file or folder redoes that genome only."""
    from tests.support.tracks import many_short_contigs

    second = write_fasta(tmp_path / "scaffolds.fa", many_short_contigs(n=8))
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(inputs["sheet"].read_text() + f"scaffolds\tfile\tGCA_000000002.1\t{second}\ttrain\t\n")
    config = cohort(tmp_path, {**inputs, "sheet": sheet})
    config.write_text(config.read_text().replace(f"- {GENOME}", f"- {GENOME}\n  - scaffolds"))
    run_to_end(config)
    tracks = tmp_path / "results" / "tracks"
    assert (tracks / "scaffolds" / MODEL / "mlm_loss.bw").exists() and (
        tracks / GENOME / MODEL / "mlm_loss.bw"
    ).exists()

    def planned_jobs() -> dict[str, set[str]]:
        """rule → genomes it would run for, from a dry run."""
        done = subprocess.run(
            [*command(config), "-n"],
            cwd=REPO,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        jobs: dict[str, set[str]] = {}
        rule = None
        for line in (done.stdout + done.stderr).splitlines():
            if line.startswith(("rule ", "localrule ")):
                rule = line.split()[1].rstrip(":")
            elif rule and line.strip().startswith("wildcards:"):
                genome = dict(item.split("=") for item in line.split(":", 1)[1].strip().split(", ")).get("genome")
                jobs.setdefault(rule, set()).add(genome)
        return jobs

    # (Chunk files are temporary, so a gather to redo scores its genome again.)
    (tracks / "scaffolds" / MODEL / "segments.bed").unlink()
    redo_scaffolds = {rule: {"scaffolds"} for rule in ("score_chunk", "gather_tracks", "write_browser_files")}
    assert planned_jobs() == redo_scaffolds
    subprocess.run(["rm", "-rf", str(tracks / GENOME / MODEL)], check=True)
    assert planned_jobs() == {rule: {GENOME, "scaffolds"} for rule in redo_scaffolds}
