"""Tracks at genome scale: jobs sized by time, embeddings kept at a chosen cost, the NT cohort config."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import open_fasta
from dnafm_lib.inference.tracks import catalog
from dnafm_lib.inference.tracks.catalog import EMBEDDING_PCA_NPZ, EMBEDDING_PCS_NPY
from dnafm_lib.inference.tracks.embeddings import project_and_cluster_blocks
from dnafm_lib.inference.tracks.gather import gather_tracks
from dnafm_lib.inference.tracks.one_shot import run_genome
from dnafm_lib.inference.tracks.plan import read_chunk_plan, write_chunk_plan
from dnafm_lib.inference.tracks.tiling import forward_tokens_per_bp
from dnafm_lib.workflow.chunk_size import configured_chunk_bp
from tests.support.tracks import FAST, genome_with_gaps, save_tiny_model, write_fasta

REPO = Path(__file__).resolve().parents[2]
NT_CONFIG = REPO / "config" / "cohorts" / "nt_multispecies.yaml"
DEFAULT_CONFIG = REPO / "config" / "config.yaml"


# GRCh38's chr1-22, X, Y and chrM lengths (3.09 Gb).
HUMAN_CHROMOSOMES = [
    248_956_422,
    242_193_529,
    198_295_559,
    190_214_555,
    181_538_259,
    170_805_979,
    159_345_973,
    145_138_636,
    138_394_717,
    133_797_422,
    135_086_622,
    133_275_309,
    114_364_328,
    107_043_718,
    101_991_189,
    90_338_345,
    83_257_441,
    80_373_285,
    58_617_616,
    64_444_167,
    46_709_983,
    50_818_468,
    156_040_895,
    57_227_415,
    16_569,
]


def vertebrate_fai(path: Path) -> Path:
    """A human-size assembly as a .fai only: 25 chromosomes (3.09 Gb) and 2,000 small scaffolds."""
    scaffolds = np.random.default_rng(0).integers(1_000, 100_000, 2_000).tolist()
    with open(path, "w") as handle:
        offset = 0
        for i, length in enumerate(HUMAN_CHROMOSOMES + scaffolds):
            name = f"chr{i + 1}" if i < len(HUMAN_CHROMOSOMES) else f"scaffold_{i}"
            handle.write(f"{name}\t{length}\t{offset}\t80\t81\n")
            offset += length + length // 80 + 1
    return path


def test_a_vertebrate_genome_scores_in_hundreds_of_jobs_of_about_the_target_length(tmp_path):
    tracks = yaml.safe_load(NT_CONFIG.read_text())["tracks"]
    fai = vertebrate_fai(tmp_path / "genome.fa.gz.fai")
    genome_bp = sum(int(line.split("\t")[1]) for line in fai.read_text().splitlines())
    assert 3.1e9 < genome_bp < 3.3e9

    chunk_bp = configured_chunk_bp(tracks)
    write_chunk_plan(fai, tmp_path / "chunks.tsv", chunk_bp, tracks["bin_bp"])
    plan = read_chunk_plan(tmp_path / "chunks.tsv")

    # Hundreds of scoring jobs, not the ~31,000 of 100-kb chunks.
    assert 300 <= len(plan) <= 1000, len(plan)
    assert len(write_chunk_plan(fai, tmp_path / "small.tsv", 100_000, tracks["bin_bp"])) > 31_000
    # Each job scores for about the target: packing small contigs may add less than one bin.
    per_bp = forward_tokens_per_bp(
        tracks["window_bp"],
        tracks["stride_bp"],
        tracks["passes"],
        tracks["reverse_complement"],
        tracks["layer"] is not None,
    )
    minutes = [sum(r.length for r in regions) * per_bp / tracks["tokens_per_second"] / 60 for regions in plan.values()]
    assert max(minutes) <= tracks["target_job_minutes"] * 1.001
    assert np.median(minutes) >= 0.9 * tracks["target_job_minutes"]
    assert tracks["runtime_min"] >= 2 * tracks["target_job_minutes"]


def test_chunk_size_follows_the_scoring_cost_per_base():
    base = {
        "chunk_bp": 100_000,
        "window_bp": 3998,
        "stride_bp": 1999,
        "passes": 7,
        "reverse_complement": False,
        "layer": -1,
        "bin_bp": 100,
        "target_job_minutes": 30,
        "tokens_per_second": 20_000,
    }
    one = configured_chunk_bp(base)
    assert one % 100 == 0
    # 7 masked passes + the embedding pass over 4000-token windows every 1999 nt: 16 tokens per bp.
    assert one == pytest.approx(30 * 60 * 20_000 / (4000 * 8 / 1999), abs=100)
    # Both strands: 15 forwards per window instead of 8.
    assert configured_chunk_bp({**base, "reverse_complement": True}) == pytest.approx(one * 8 / 15, abs=100)
    assert configured_chunk_bp({**base, "tokens_per_second": 40_000}) == pytest.approx(2 * one, abs=100)
    # A job on four GPUs (four ranks) scores four times the bases in the same time; no GPU is one rank.
    assert configured_chunk_bp({**base, "gpus_per_job": 4}) == pytest.approx(4 * one, abs=400)
    assert configured_chunk_bp({**base, "gpus_per_job": 0}) == one
    assert configured_chunk_bp({**base, "target_job_minutes": None}) == 100_000
    with pytest.raises(DnafmError, match="tracks.target_job_minutes needs tracks.tokens_per_second"):
        configured_chunk_bp({**base, "tokens_per_second": None})


# --------------------------------------------------------------------------- embeddings at scale


def planted_blocks(n_bins: int, hidden: int, block_rows: int, centres: np.ndarray, seed: int = 7):
    """Bins in row blocks (like chunk files), each near one of ``centres``, made on the fly.

    Returns ``blocks()`` (callable again, same values) and the planted label of every bin.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centres), n_bins)
    noise = (rng.standard_normal((block_rows + 97, hidden)) * 0.5).astype(np.float32)

    def blocks():
        for index, lo in enumerate(range(0, n_bins, block_rows)):
            rows = min(block_rows, n_bins - lo)
            shift = index % 97  # a different noise row for a bin in each block
            yield (centres[labels[lo : lo + rows]] + noise[shift : shift + rows]).astype(np.float16)

    return blocks, labels


@pytest.mark.slow
def test_pca_and_kmeans_over_millions_of_bins_stay_within_a_bounded_memory():
    from sklearn.metrics import adjusted_rand_score

    n_bins, hidden, k = 3_000_000, 64, 5
    centres = np.random.default_rng(0).standard_normal((k, hidden)).astype(np.float32) * 4
    blocks, labels = planted_blocks(n_bins, hidden, 65_536, centres)
    full_array_bytes = n_bins * hidden * 4
    tracemalloc.clear_traces()

    tracemalloc.start()
    try:
        projection = project_and_cluster_blocks(blocks, n_bins, hidden, n_clusters=k, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # The per-bin results (PC1-3 float32 + cluster int32: 16 bytes a bin) plus the fit sample and
    # a block or two, never the (n_bins, hidden) array (768 MB here).
    assert peak < 16 * n_bins + 100 * 2**20 < full_array_bytes / 3, peak
    assert projection.pcs.shape == (n_bins, 3) and np.isfinite(projection.pcs).all()
    assert adjusted_rand_score(labels, projection.clusters) > 0.99


@pytest.fixture(scope="module")
def scored_chunks(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    fasta = write_fasta(root / "genome.fa", genome_with_gaps())
    open_fasta(fasta)
    model = save_tiny_model(root / "tiny")
    out = root / "full"
    run_genome(fasta, str(model), out, FAST, chunk_bp=1000, n_clusters=3, device="cpu", keep_chunks=True)
    return fasta, out, sorted((out / "chunks").glob("chunk*.npz"))


@pytest.mark.slow
def test_the_pcs_store_keeps_top_pcs_instead_of_the_full_array_with_the_same_segments(scored_chunks, tmp_path):
    fasta, full, chunks = scored_chunks
    pcs = tmp_path / "pcs"
    summary = gather_tracks(chunks, str(fasta) + ".fai", pcs, n_clusters=3, embeddings="pcs", fasta_path=fasta)

    assert summary["embedding_store"] == "pcs"
    assert not (pcs / catalog.EMBEDDINGS_NPY).exists()
    embeddings = np.load(full / catalog.EMBEDDINGS_NPY)
    top = np.load(pcs / EMBEDDING_PCS_NPY)
    assert top.dtype == np.float16 and top.shape == (embeddings.shape[0], min(16, embeddings.shape[1]))
    with np.load(pcs / EMBEDDING_PCA_NPZ) as pca:
        # The stored PCs are the bins projected with the stored PCA.
        projected = (embeddings.astype(np.float32) - pca["mean"]) @ pca["components"].T
        np.testing.assert_allclose(top.astype(np.float32), projected, rtol=1e-2, atol=2e-2)
    # Same fit, same clusters, same tracks as the full store.
    for name in (catalog.SEGMENTS_BED, "embedding_pc1.bw", "mlm_loss.bw", catalog.EMBEDDING_BINS_BED):
        assert (pcs / name).read_bytes() == (full / name).read_bytes(), name


def test_an_unknown_embeddings_store_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(DnafmError, match="embeddings store 'half'"):
        gather_tracks([tmp_path / "chunk00000.npz"], tmp_path / "chrom.sizes", tmp_path / "x", embeddings="half")
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the NT cohort config


def test_the_nt_cohort_sets_every_tracks_and_finetune_key_for_the_7b_model_on_gpus():
    nt = yaml.safe_load(NT_CONFIG.read_text())
    defaults = yaml.safe_load(DEFAULT_CONFIG.read_text())
    for section in ("tracks", "finetune"):
        missing = set(defaults[section]) - set(nt[section])
        assert not missing, f"{section}: {sorted(missing)} come from the demo's defaults"
    tracks, finetune = nt["tracks"], nt["finetune"]
    assert nt["pretrain"]["train"]["model"] == "7b"
    assert tracks["window_bp"] == nt["shards"]["window_nt"] == 3998
    assert tracks["device"] == finetune["device"] == "cuda"
    assert tracks["gpus_per_job"] >= 1 and finetune["gpus_per_job"] >= 1
    assert list(tracks["models"].values()) == ["export"]
    # the published AIDO.DNA-7B comparison is opt-in: a commented line that names its directory
    assert "# aido_dna_7b: resources/checkpoints/AIDO.DNA-7B" in NT_CONFIG.read_text()
    assert tracks["embeddings"] == "pcs"


def dry_run(*args, cwd=REPO):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--nolock", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def job_counts(stdout: str) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run."""
    counts = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit() and fields[0] not in ("total", "job"):
            counts[fields[0]] = int(fields[1])
    return counts


@pytest.mark.slow
def test_the_nt_cohort_config_dry_runs_offline_from_a_checkout(tmp_path):
    """As a user runs it: in a checkout (config/ and the demo's resources/), with nothing downloaded;
    the published AIDO.DNA-7B comparison is opt-in (a commented line), so nothing else is needed."""
    (tmp_path / "resources").mkdir()
    (tmp_path / "config").symlink_to(REPO / "config")
    (tmp_path / "resources" / "demo").symlink_to(REPO / "resources" / "demo")

    run = dry_run("--snakefile", REPO / "Snakefile", "--directory", tmp_path, "--configfile", NT_CONFIG, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    # The genome list comes from the NT list, fetched by build_splits when the run starts.
    assert job_counts(run.stdout)["build_splits"] == 1
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_the_nt_cohort_plans_hundreds_of_scoring_jobs_per_model_for_the_rat(tmp_path):
    """The tracks rules themselves, past the checkpoints: the rat as if downloaded and prepared
    (a 2.65-Gb .fai only), its chunk plan made by the real checkpoint rule, then a dry run."""
    rat = "GCF_015227675.2"
    results = tmp_path / "results"
    splits = results / "splits"
    splits.mkdir(parents=True)
    (splits / "genomes.tsv").write_text(
        "genome\taccession\tsource\tlocation\tsplit\tannotation\tassembly_name\tstatus\n"
        f"{rat}\t{rat}\tncbi\t\ttrain\t\tmRatBN7.2\tcurrent\n"
    )
    (splits / "summary.json").write_text("{}")
    (splits / "removed.tsv").write_text("")
    (results / "downloads" / rat).mkdir(parents=True)
    (results / "downloads" / rat / "download.json").write_text("{}")
    genome = results / "genomes" / rat
    genome.mkdir(parents=True)
    rng = np.random.default_rng(1)
    sizes = np.linspace(260_000_000, 5_000_000, 20).astype(int).tolist() + rng.integers(1_000, 100_000, 150).tolist()
    fai_lines = [f"contig{i}\t{n}\t0\t80\t81\n" for i, n in enumerate(sizes)]
    (genome / "genome.fa.gz.fai").write_text("".join(fai_lines))
    (genome / "chrom.sizes").write_text(
        "".join(line.split("\t")[0] + "\t" + line.split("\t")[1] + "\n" for line in fai_lines)
    )
    for name in ("genome.fa.gz", "genome.fa.gz.gzi", "provenance.json"):
        (genome / name).write_text("")
    published = tmp_path / "AIDO.DNA-7B"
    published.mkdir()
    (published / "config.json").write_text("{}")
    (published / "model.safetensors").write_bytes(b"")  # the start check wants weight files there
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "results_dir": str(results),
                "logs_dir": str(tmp_path / "logs"),
                "tracks": {
                    "models": {"dnafm_7b": "export", "aido_dna_7b": str(published)},
                    "igv_js": str(published / "config.json"),
                },
            }
        )
    )
    plan = results / "tracks" / rat / "chunks.tsv"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            plan,
            "--configfile",
            NT_CONFIG,
            overlay,
            "--nolock",
            "--cores",
            "1",
            "--allowed-rules",
            "split_genome_chunks",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-3000:]

    run = dry_run("tracks_all", "--configfile", NT_CONFIG, overlay)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = job_counts(run.stdout)
    assert "score_chunk" in counts, run.stdout[-3000:] + run.stderr[-3000:]
    n_chunks = len(read_chunk_plan(plan))
    assert 400 <= n_chunks <= 800, n_chunks  # 2.65 Gb in ~4.5-Mb chunks
    # One job per chunk and model: both of the cohort's models (and, until cohort maps replace the
    # defaults' rather than merge into them, the demo's "demo: export" too).
    assert counts["gather_tracks"] == counts["write_browser_files"] >= 2
    assert counts["score_chunk"] == counts["gather_tracks"] * n_chunks
