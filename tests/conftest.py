"""Fixtures shared by several test modules (pytest finds them here without imports)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dnafm_lib
from tests.support.slurm import slurm_cluster  # noqa: F401  (the local Slurm cluster, for test_slurm*.py)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and lose much when other jobs share the cores.

    Used by modules that score with tiny models: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model (seeded) saved as a checkpoint directory (test_tracks overrides it with its own)."""
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("model") / "tiny"
    dnafm_lib.save_model(dnafm_lib.load_model("tiny"), path)
    return path


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """A two-contig FASTA (soft-masked bases and Ns on chr2) and its sequences by name."""
    rng = np.random.default_rng(3)
    contigs = {
        "chr1": "".join(rng.choice(list("ACGT"), 80)),
        "chr2": "acgtNNACGT" + "".join(rng.choice(list("ACGTacgt"), 30)),  # soft-masked bases and Ns
    }
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    path.write_text("".join(f">{name} test contig\n{seq}\n" for name, seq in contigs.items()))
    return path, contigs


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KiB tmpfs to fill (disk-full tests), unmounted afterwards; skipped where mounting is not permitted."""
    import gc
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    yield disk
    gc.collect()  # a writer's file handle still held by a traceback keeps the mount busy
    if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)
