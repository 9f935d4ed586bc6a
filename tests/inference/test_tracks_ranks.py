"""Several ranks score one chunk (`dnafm tracks score --ranks N`: torchrun, gloo on the CPU) into
the same bytes as one rank."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import ensure_indexed
from dnafm_lib.inference.tracks.chunk_arrays import load_chunk
from dnafm_lib.inference.tracks.scoring import Ranks, WindowScorer
from tests.support.tracks import FAST, genome_with_gaps, save_tiny_model, write_fasta


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


SCORING = ["--window-bp", "300", "--stride-bp", "150", "--passes", "3", "--bin-bp", "50", "--batch-size", "3"]


def _command(tmp_path, ranks: int, out, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "dnafm_lib.cli", "tracks", "score", "--fasta", str(tmp_path / "genome.fa")]
    command += ["--plan", str(tmp_path / "plan.tsv"), "--chunk", "chunk00000", "--model", str(tmp_path / "model")]
    return command + ["--out", str(out), "--ranks", str(ranks), "--device", "cpu", "--reverse-complement", *extra]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DNAFM_PROGRESS_SECONDS": "0"}


def _score(tmp_path, ranks: int, *extra: str, out=None):
    out = out or tmp_path / f"ranks{ranks}.npz"
    done = subprocess.run(_command(tmp_path, ranks, out, *extra), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stderr


def _same_bytes(one, two):
    a, b = _members(one), _members(two)
    assert a.keys() == b.keys()
    for name in a:
        if name != "provenance_json.npy":  # when, how fast and on how many ranks it ran
            assert a[name] == b[name], name


@pytest.fixture()
def chunk_inputs(tmp_path):
    fai = str(ensure_indexed(write_fasta(tmp_path / "genome.fa", genome_with_gaps()[:2]))) + ".fai"
    save_tiny_model(tmp_path / "model")
    subprocess.run(
        [sys.executable, "-m", "dnafm_lib.cli", "tracks", "plan", "--fai", fai]
        + ["--chunk-bp", "100000", "--bin-bp", "50", "--out", str(tmp_path / "plan.tsv")],
        check=True,
        capture_output=True,
    )
    return tmp_path


def test_two_gloo_ranks_write_the_bytes_of_one(chunk_inputs):
    one, _ = _score(chunk_inputs, 1, *SCORING)
    two, log = _score(chunk_inputs, 2, *SCORING)
    _same_bytes(one, two)
    assert load_chunk(one).provenance["throughput"]["ranks"] == 1
    throughput = load_chunk(two).provenance["throughput"]
    assert throughput["ranks"] == 2 and throughput["batch_size"] == 3 and throughput["device"] == "2 x cpu"
    assert throughput["tokens"] == load_chunk(one).provenance["throughput"]["tokens"]  # every batch, once
    assert "throughput:" in log and "2 rank(s)" in log  # the job's log line


def test_ranks_refuse_a_stride_below_the_bin_when_embeddings_are_on():
    import dnafm_lib

    settings = dataclasses.replace(FAST, stride_bp=40, bin_bp=50)
    with pytest.raises(DnafmError, match="stride_bp \\(40\\) of at least bin_bp \\(50\\)"):
        WindowScorer(dnafm_lib.load_model("tiny"), settings, "cpu", Ranks(0, 2))


@pytest.mark.slow
def test_two_ranks_killed_mid_chunk_leave_nothing_and_a_rerun_writes_the_same_bytes(chunk_inputs):
    out = chunk_inputs / "killed" / "chunk.npz"
    out.parent.mkdir()
    scoring = [*SCORING, "--passes", "12"]  # long enough (seconds) to be killed mid-chunk on an idle machine
    job = subprocess.Popen(
        _command(chunk_inputs, 2, out, *scoring),
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the launcher, torchrun and both ranks: one process group, killed as a job is
    )
    for line in job.stderr:
        if line.startswith("scoring:") and "(100%)" not in line:
            break  # rank 0 is scoring
    else:
        pytest.fail("the scoring job ended before it could be killed mid-chunk")
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    time.sleep(0.5)
    assert list(out.parent.iterdir()) == []  # no chunk file, no temporary one
    _score(chunk_inputs, 2, *scoring, out=out)
    one, _ = _score(chunk_inputs, 1, *scoring)
    _same_bytes(one, out)


def _rank(rank: int, world: int, store: str, genome: str, out: str) -> None:
    """One rank of an in-process world (FileStore, gloo); rank 1 runs out of memory above 2 windows."""
    import numpy as np
    import torch
    import torch.distributed as dist

    import dnafm_lib
    from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
    from dnafm_lib.inference.tracks.tiling import Region

    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store, world), rank=rank, world_size=world)
    torch.manual_seed(0)
    model = dnafm_lib.load_model("tiny").eval()
    if rank == 1:
        calls = []

        def hook(module, args):
            calls.append(1)
            if len(calls) > 2 and args[0].shape[0] > 2:
                raise torch.cuda.OutOfMemoryError("injected")

        model.register_forward_pre_hook(hook)
    fasta = open_fasta(genome)
    lengths = fasta_lengths(fasta)
    scorer = WindowScorer(model, dataclasses.replace(FAST, batch_size=4), "cpu", Ranks(rank, world))
    scores = scorer.score_regions([Region(c, 0, n) for c, n in lengths.items()], lambda c, s, e: fasta[c][s:e], lengths)
    if rank == 0:
        np.savez(
            out,
            probs=np.concatenate([s.probs for s in scores]),
            bins=np.concatenate([s.bin_sums for s in scores]),
            info=np.array([scorer.run_info["batch_size"], scorer.run_info["oom_backoffs"]]),
        )
    dist.destroy_process_group()


def test_an_out_of_memory_error_on_one_rank_halves_the_batch_of_every_rank(tmp_path):
    import numpy as np
    import torch.multiprocessing as mp

    from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
    from dnafm_lib.inference.tracks.tiling import Region

    genome = str(write_fasta(tmp_path / "genome.fa", genome_with_gaps()[:2]))
    out = str(tmp_path / "ranks.npz")
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), genome, out), nprocs=2, join=True)
    import torch

    import dnafm_lib

    torch.manual_seed(0)
    fasta = open_fasta(genome)
    lengths = fasta_lengths(fasta)
    scorer = WindowScorer(dnafm_lib.load_model("tiny"), dataclasses.replace(FAST, batch_size=2), "cpu")
    alone = scorer.score_regions([Region(c, 0, n) for c, n in lengths.items()], lambda c, s, e: fasta[c][s:e], lengths)
    with np.load(out) as ranks:
        assert ranks["info"].tolist() == [2, 1]  # 4 → 2 on both ranks, once
        assert ranks["probs"].tobytes() == np.concatenate([s.probs for s in alone]).tobytes()
        assert ranks["bins"].tobytes() == np.concatenate([s.bin_sums for s in alone]).tobytes()
