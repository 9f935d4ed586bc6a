"""The all-SNV table: one row per possible SNV with the llr of the tracks' probabilities, tabix-indexed."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pysam
import pytest

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.snv_table import BASES, RegionProbs, chunk_regions, read_table_meta, write_snv_table
from dnafm_lib.inference.tracks.chunk_arrays import save_chunk
from dnafm_lib.inference.tracks.scoring import RegionScores
from dnafm_lib.inference.tracks.tiling import Region


def random_genome(n: int, seed: int = 0) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    bases = "".join(rng.choice(list("ACGTacgtN"), n, p=[0.22, 0.2, 0.2, 0.22, 0.04, 0.03, 0.03, 0.04, 0.02]))
    probs = rng.dirichlet([2, 1, 1, 2], n).astype(np.float32)
    probs[[5, 17]] = np.nan  # unscored bases
    return bases, probs


def read_rows(path) -> list[list[str]]:
    with pysam.TabixFile(str(path)) as table:
        return [line.split("\t") for contig in table.contigs for line in table.fetch(contig)]


def three_significant(value: float) -> str:
    return f"{value:.3g}"


def test_every_snv_of_every_scored_base_with_its_llr(tmp_path):
    bases, probs = random_genome(400)
    out = tmp_path / "snv_scores.tsv.bgz"
    info = write_snv_table(lambda: iter([RegionProbs("chr1", 0, bases.encode(), probs)]), out, {"model": "m"})
    rows = read_rows(out)
    scored = [i for i, b in enumerate(bases) if b.upper() in BASES and not np.isnan(probs[i]).any()]
    assert info["rows"] == len(rows) == 3 * len(scored)
    assert (tmp_path / "snv_scores.tsv.bgz.tbi").exists()
    by_position: dict[int, list[list[str]]] = {}
    for row in rows:
        by_position.setdefault(int(row[1]), []).append(row)
    assert sorted(by_position) == [i + 1 for i in scored]  # 1-based, sorted
    for i in scored:
        ref = bases[i].upper()
        got = by_position[i + 1]
        assert [r[3] for r in got] == [b for b in BASES if b != ref]
        for row in got:
            assert row[0] == "chr1" and row[2] == ref
            expected = math.log(probs[i][BASES.index(row[3])]) - math.log(probs[i][BASES.index(ref)])
            assert row[4] == three_significant(expected)


def test_the_z_score_standardises_each_trinucleotide_class(tmp_path):
    bases, probs = random_genome(30_000, seed=1)
    out = tmp_path / "t.tsv.bgz"
    write_snv_table(lambda: iter([RegionProbs("chr1", 0, bases.encode(), probs)]), out, {"model": "m"})
    upper = bases.upper()
    classes: dict[tuple[str, str], list[float]] = {}
    for row in read_rows(out):
        i = int(row[1]) - 1
        context = upper[i - 1 : i + 2] if 0 < i < len(upper) - 1 else ""
        if len(context) == 3 and set(context) <= set(BASES):
            assert row[5] != "."
            classes.setdefault((context, row[3]), []).append(float(row[5]))
        else:
            assert row[5] == "."  # a contig end or an N beside it: no class
    assert len(classes) == 192
    for values in classes.values():
        assert abs(np.mean(values)) < 0.01 and abs(np.std(values, ddof=1) - 1) < 0.01


def test_header_says_what_made_the_table_and_what_the_columns_mean(tmp_path):
    out = tmp_path / "t.tsv.bgz"
    write_snv_table(lambda: iter([RegionProbs("c", 0, b"ACGTAC", np.full((6, 4), 0.25))]), out, {"model": "demo"})
    meta = read_table_meta(out)
    assert meta["model"] == "demo" and "natural log" in meta["llr"]
    with pysam.TabixFile(str(out)) as table:
        assert list(table.header)[-1] == "#chrom\tpos\tref\talt\tllr\tllr_z"
    with pytest.raises(DnafmError, match="not a tabix-indexed SNV table"):
        read_table_meta(tmp_path / "missing.tsv.bgz")


def save_chunks(tmp_path, bases: str, probs: np.ndarray, cuts: list[int]) -> list:
    """Chunk files of one contig cut at ``cuts`` (one region per chunk), as the tracks scoring writes them."""
    paths, edges = [], [0, *cuts, len(bases)]
    for k, (start, end) in enumerate(zip(edges, edges[1:])):
        n = end - start
        scores = RegionScores(
            Region("chr1", start, end),
            100,
            probs[start:end],
            np.zeros(n, np.float32),
            np.zeros(n, np.float32),
            None,
            None,
        )
        path = tmp_path / f"chunk{len(cuts)}_{k}.npz"
        save_chunk(path, [scores], {})
        paths.append(path)
    return paths


def test_chunked_equals_unchunked(tmp_path):
    bases, probs = random_genome(5_000, seed=2)
    fasta = {"chr1": bases}
    tables = []
    for cuts in ([], [1234, 3001], [1, 2, 2500, 4999]):
        paths = save_chunks(tmp_path, bases, probs, cuts)
        out = tmp_path / f"cut{len(cuts)}.tsv.bgz"
        write_snv_table(lambda paths=paths: chunk_regions(paths, fasta), out, {"model": "m"})
        tables.append(out.read_bytes())
    assert tables[0] == tables[1] == tables[2]


KILL_SCRIPT = """
import sys, numpy as np
from dnafm_lib.inference.snv_table import RegionProbs, write_snv_table
rng = np.random.default_rng(4)
n = 300_000
bases = np.array(rng.choice(list(b"ACGT"), n), dtype=np.uint8).tobytes()
probs = rng.dirichlet([1, 1, 1, 1], n).astype(np.float32)
regions = lambda: (RegionProbs("chr1", s, bases[s:s + 10_000], probs[s:s + 10_000]) for s in range(0, n, 10_000))
write_snv_table(regions, sys.argv[1], {"model": "m"})
"""


@pytest.mark.slow
def test_a_kill_while_writing_then_a_rerun_gives_the_same_bytes(tmp_path):
    script = tmp_path / "write.py"
    script.write_text(KILL_SCRIPT)
    reference = tmp_path / "ref" / "t.tsv.bgz"
    reference.parent.mkdir()
    subprocess.run([sys.executable, str(script), str(reference)], check=True)
    out = tmp_path / "out" / "t.tsv.bgz"
    out.parent.mkdir()
    process = subprocess.Popen([sys.executable, str(script), str(out)])
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".tmp-") for p in out.parent.iterdir()):  # writing has begun
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()  # nothing under the final name
    subprocess.run([sys.executable, str(script), str(out)], check=True)
    assert out.read_bytes() == reference.read_bytes()
    assert Path(f"{out}.tbi").read_bytes() == Path(f"{reference}.tbi").read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["t.tsv.bgz", "t.tsv.bgz.tbi"]


def test_the_table_from_the_probability_bigwigs_equals_the_one_from_the_chunks(tmp_path):
    from dnafm_lib.inference.snv_table import write_snv_outputs_from_bigwigs
    from dnafm_lib.inference.tracks.writers import BigWigWriter

    bases, probs = random_genome(7_000, seed=5)
    contigs = {"c1": (bases[:4000], probs[:4000]), "c2": (bases[4000:], probs[4000:])}
    sizes = [(name, len(seq)) for name, (seq, _) in contigs.items()]
    fasta = tmp_path / "g.fa"
    fasta.write_text("".join(f">{name}\n{seq}\n" for name, (seq, _) in contigs.items()))
    bigwigs = {}
    for i, base in enumerate(BASES):
        bigwigs[base] = tmp_path / f"prob_{base}.bw"
        with BigWigWriter(bigwigs[base], sizes) as writer:
            for name, (_, p) in contigs.items():
                writer.add_bases(name, 0, p[:, i])
    from_bigwigs = tmp_path / "bw.tsv.bgz"
    min_llr = tmp_path / "snv_min_llr.bw"
    write_snv_outputs_from_bigwigs(bigwigs, fasta, sizes, from_bigwigs, min_llr, {"model": "m"})
    direct = tmp_path / "direct.tsv.bgz"
    regions = [RegionProbs(name, 0, seq.encode(), p) for name, (seq, p) in contigs.items()]
    write_snv_table(lambda: iter(regions), direct, {"model": "m"})
    assert from_bigwigs.read_bytes() == direct.read_bytes()
    # the min-LLR track: each base's lowest llr among its three rows
    import pyBigWig

    lowest: dict[tuple[str, int], float] = {}
    for row in read_rows(direct):
        key = (row[0], int(row[1]))
        lowest[key] = min(lowest.get(key, math.inf), float(row[4]))
    with pyBigWig.open(str(min_llr)) as track:
        for name, length in sizes:
            values = track.values(name, 0, length, numpy=True)
            for pos in range(length):
                if (name, pos + 1) in lowest:
                    assert float(f"{values[pos]:.3g}") == pytest.approx(lowest[(name, pos + 1)], abs=1e-9)
                else:
                    assert np.isnan(values[pos])


# ------------------------------------------------ through the tracks stage (run_genome)


@pytest.fixture(scope="module")
def tracked_genome(tmp_path_factory):
    """A tiny model's tracks of a gapped genome, scored in one chunk and in many."""
    from dnafm_lib.data.indexed_fasta import open_fasta
    from dnafm_lib.inference.tracks.one_shot import run_genome
    from dnafm_lib.inference.tracks.scoring import ScoringSettings
    from tests.support.tracks import genome_with_gaps, save_tiny_model, write_fasta

    root = tmp_path_factory.mktemp("snv_tracks")
    fasta = write_fasta(root / "genome.fa", genome_with_gaps())
    open_fasta(fasta)
    model = save_tiny_model(root / "tiny")
    settings = ScoringSettings(window_bp=126, stride_bp=63, passes=2, batch_size=16)
    runs = {}
    for chunk_bp in (1_000_000, 700):
        out = root / f"chunk_bp_{chunk_bp}"
        runs[chunk_bp] = run_genome(fasta, str(model), out, settings, chunk_bp=chunk_bp, device="cpu"), out
    return fasta, runs


def test_the_tracks_table_holds_the_probability_bigwigs_values_value_by_value(tracked_genome):
    import pyBigWig

    from dnafm_lib.inference.tracks import catalog

    fasta, runs = tracked_genome
    summary, out = runs[1_000_000]
    assert summary["snv_table"]["file"] == catalog.SNV_TABLE and "snv_min_llr.bw" in summary["tracks"]
    bases = {name: seq.upper() for name, seq in _fasta_records(fasta)}
    tracks = {b: pyBigWig.open(str(out / f"prob_{b}.bw")) for b in BASES}
    rows = read_rows(out / catalog.SNV_TABLE)
    assert rows and len(rows) == summary["snv_table"]["rows"]
    expected_rows = 0
    for contig, seq in bases.items():
        probs = np.stack([tracks[b].values(contig, 0, len(seq), numpy=True) for b in BASES], axis=1)
        expected_rows += 3 * int(sum(1 for i, b in enumerate(seq) if b in BASES and not np.isnan(probs[i]).any()))
    assert len(rows) == expected_rows
    for chrom, pos, ref, alt, llr, _ in rows[::37]:  # a spread sample, every field checked
        i = int(pos) - 1
        p = [tracks[b].values(chrom, i, i + 1)[0] for b in BASES]
        assert ref == bases[chrom][i]
        assert llr == three_significant(math.log(p[BASES.index(alt)]) - math.log(p[BASES.index(ref)]))


def test_the_tracks_table_is_the_same_scored_in_one_chunk_or_many(tracked_genome):
    from dnafm_lib.inference.tracks import catalog

    _, runs = tracked_genome
    one, many = runs[1_000_000][1], runs[700][1]
    assert len(list((many / "chunks").glob("*.npz"))) == 0  # chunks removed after the gather
    for name in (catalog.SNV_TABLE, catalog.SNV_TABLE_INDEX, "snv_min_llr.bw", "prob_A.bw"):
        assert (one / name).read_bytes() == (many / name).read_bytes(), name


def _fasta_records(path):
    name, parts = None, []
    for line in Path(path).read_text().splitlines():
        if line.startswith(">"):
            if name:
                yield name, "".join(parts)
            name, parts = line[1:].split()[0], []
        else:
            parts.append(line)
    if name:
        yield name, "".join(parts)
