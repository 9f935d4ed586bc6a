"""SIGKILL a real ``dnafm`` process mid-write, rerun the same command: the files of an uninterrupted run, no temps.

prepare-genome and shard get a 40 Mb genome so that the kill lands while the output is being
written (the test checks that it did: a ``.tmp-*`` directory was left by the kill); pretrain
is killed after its first checkpoint and compared through the exported weights.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.train import REPO, env, losses, pretrain_command, run_pretrain, settings, write_demo_shards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_fasta(tmp_path_factory) -> Path:
    """4 records × 10 Mb, soft-masked bases and Ns, 80 nt per line (~40 MB)."""
    path = tmp_path_factory.mktemp("fasta") / "big.fa"
    rng = np.random.default_rng(0)
    alphabet = np.frombuffer(b"ACGTacgtN", dtype=np.uint8)
    with open(path, "wb") as handle:
        for contig in range(4):
            bases = alphabet[rng.integers(0, alphabet.size, 10_000_000)]
            lines = np.full((bases.size // 80, 81), ord("\n"), dtype=np.uint8)
            lines[:, :80] = bases.reshape(-1, 80)
            handle.write(b">chr%d test\n" % contig + lines.tobytes())
    return path


def dnafm(*argv: str) -> list[str]:
    return [sys.executable, "-m", "dnafm_lib", *argv]


def kill_when(command: list[str], ready, timeout: float = 120.0) -> None:
    """Start ``command``, SIGKILL it as soon as ``ready()`` holds; fail if it finished first."""
    process = subprocess.Popen(command, env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                raise AssertionError(f"finished (exit {process.returncode}) before it could be killed")
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the moment to kill")
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


def temps(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.name.startswith((".tmp-", ".old-")))


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def temp_holds(root: Path, prefix: str, name: str, min_bytes: int):
    def ready() -> bool:
        return any((t / name).exists() and (t / name).stat().st_size >= min_bytes for t in root.glob(f"{prefix}*"))

    return ready


def test_prepare_genome_killed_mid_write_reruns_to_the_same_files_and_no_temp(big_fasta, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(
        dnafm("prepare-genome", "--genome", "g", "--fasta", str(big_fasta), "--out-dir", str(reference / "g")),
        env=env(),
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    command = dnafm("prepare-genome", "--genome", "g", "--fasta", str(big_fasta), "--out-dir", str(killed / "g"))
    kill_when(command, temp_holds(killed, ".tmp-g.", "genome.fa.gz", 1 << 20))
    assert temps(killed) and not (killed / "g").exists()  # the kill left a half-written temp directory

    done = subprocess.run(command, env=env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert temps(killed) == []  # the rerun swept the dead writer's temp
    assert sorted(p.name for p in killed.iterdir()) == ["g"]
    got, want = files(killed / "g"), files(reference / "g")
    provenance = [json.loads(d.pop("provenance.json")) for d in (got, want)]
    for record in provenance:
        record.pop("prepared_at")
    assert got == want and provenance[0] == provenance[1]


def test_shard_killed_mid_write_reruns_to_the_same_files_and_no_temp(big_fasta, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    argv = ["--genome", "g", "--fasta", str(big_fasta), "--window-nt", "998"]
    subprocess.run(
        dnafm("shard", *argv, "--out-dir", str(reference / "g")),
        env=env(),
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    command = dnafm("shard", *argv, "--out-dir", str(killed / "g"))
    kill_when(command, temp_holds(killed, ".tmp-g.", "tokens.npy", 1 << 20))
    assert temps(killed) and not (killed / "g").exists()

    done = subprocess.run(command, env=env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert temps(killed) == []
    assert files(killed / "g") == files(reference / "g")


def test_pretrain_killed_after_a_checkpoint_reruns_to_the_same_exported_weights(tmp_path):
    manifests = write_demo_shards(tmp_path / "shards")
    runs = {}
    for name in ("reference", "killed"):
        values = settings(*manifests, tmp_path / name / "run", max_steps=8)
        if name == "killed":
            checkpoints = tmp_path / name / "run" / "checkpoints"
            kill_when(
                pretrain_command(values), lambda checkpoints=checkpoints: any(checkpoints.glob("step_*")), timeout=240
            )
            assert (
                len(losses(tmp_path / name / "run")) < 8
            )  # it really stopped early (checkpoints may be saved asynchronously)
        done = run_pretrain(values)
        assert done.returncode == 0, done.stderr
        exported = subprocess.run(
            dnafm("export", "--run-dir", str(tmp_path / name / "run"), "--out", str(tmp_path / name / "model")),
            env=env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert exported.returncode == 0, exported.stderr
        runs[name] = tmp_path / name
    assert losses(runs["killed"] / "run") == losses(runs["reference"] / "run")
    assert files(runs["killed"] / "model") == files(runs["reference"] / "model")  # byte-identical weights
    assert temps(runs["killed"]) == []
