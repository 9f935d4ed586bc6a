"""Gather: chunk files → one bigWig per track, the embedding array, segments and enrichment.

Chunk files are read one at a time, in chunk order (which is ``.fai`` order), so memory is
bounded by one chunk plus the bin-level arrays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.output_dir import claim_output_dir
from dnafm_lib.core.progress import Progress
from dnafm_lib.inference.tracks import catalog
from dnafm_lib.inference.tracks.chunk_arrays import load_bin_means, load_chunk
from dnafm_lib.inference.tracks.embeddings import (
    EMBEDDING_STORES,
    BinIndex,
    enrichment_table,
    project_and_cluster,
    read_gff_features,
    segment_rows,
    write_bin_index,
    write_embedding_array,
    write_enrichment,
    write_projection,
)
from dnafm_lib.inference.tracks.logo import with_logo_tracks
from dnafm_lib.inference.tracks.provenance import tracks_provenance
from dnafm_lib.inference.tracks.scoring import ScoringSettings
from dnafm_lib.inference.tracks.writers import BigWigWriter, read_chrom_sizes, write_bed

TRACKS_KIND = "tracks"  # the marker of a tracks directory (core/output_dir.py)
#: k-means clusters of the embedding bins (segments.bed) when nothing else says
DEFAULT_N_CLUSTERS = 8


def gather_tracks(
    chunk_paths: Sequence[str | Path],
    chrom_sizes_path: str | Path,
    out_dir: str | Path,
    *,
    n_clusters: int = DEFAULT_N_CLUSTERS,
    gff_path: str | Path | None = None,
    seed: int = ScoringSettings.seed,
    embeddings: str = "full",
    outputs: Sequence[str] = catalog.DEFAULT_OUTPUTS,
    fasta_path: str | Path | None = None,
    model_name: str | None = None,
) -> dict:
    """Write every track of a genome from its chunk files; returns the summary written to tracks.json.

    ``embeddings``: "full" keeps the (n_bins, hidden) float16 array; "pcs" only every bin's top
    PCs and the PCA (for genomes and models where the full array is too large to keep).
    ``outputs`` chooses the per-base files (``catalog.OUTPUTS``); the SNV table and the min-LLR
    track need the genome's FASTA (``fasta_path``) for the reference bases.
    """
    if embeddings not in EMBEDDING_STORES:
        raise DnafmError(f"embeddings store {embeddings!r}: expected one of {', '.join(EMBEDDING_STORES)}")
    files = catalog.output_files(outputs)  # checks the names
    snv_outputs = {"snv_table", "snv_min_llr"} & set(outputs)
    if snv_outputs and fasta_path is None:
        raise DnafmError(f"tracks outputs {', '.join(sorted(snv_outputs))} need the genome FASTA (--fasta)")
    # The workflow's score jobs put the chunk files in out_dir/chunks before the first gather; the
    # one-shot keeps its indexed copy of the genome in out_dir/genome.
    out_dir = claim_output_dir(
        out_dir, TRACKS_KIND, inputs=(chrom_sizes_path, gff_path, fasta_path), allowed=("chunks", "genome")
    )
    chrom_sizes = read_chrom_sizes(chrom_sizes_path)
    if not chunk_paths:
        raise DnafmError(f"{out_dir}: no chunk files to gather")
    _check_coverage(chunk_paths, chrom_sizes)

    keys = [spec.key for spec in catalog.GATHERED_PER_BASE_TRACKS if spec.filename in files]
    bins, hidden, settings, scored_bp, provenances = _write_per_base_tracks(chunk_paths, chrom_sizes, out_dir, keys)
    summary = {
        "settings": settings,
        "scored_bp": scored_bp,
        "n_bins": len(bins),
        "tracks": [name for name in files if name.endswith(".bw")],
        "outputs": list(outputs),
    }
    if snv_outputs:
        summary["snv_table"] = _write_snv_outputs(
            chunk_paths, fasta_path, chrom_sizes, out_dir, snv_outputs, settings, model_name or out_dir.name
        )
    summary["provenance"] = tracks_provenance(
        provenances,
        settings,
        {"n_clusters": n_clusters, "seed": seed, "annotation": str(gff_path) if gff_path else None},
    )
    if hidden and len(bins):
        summary.update(
            _write_embedding_outputs(
                chunk_paths,
                chrom_sizes,
                out_dir,
                bins,
                hidden,
                embeddings=embeddings,
                n_clusters=n_clusters,
                seed=seed,
                gff_path=gff_path,
                tracks=summary["tracks"],
            )
        )
    with atomic_open(out_dir / catalog.SUMMARY_JSON) as handle:
        json.dump(summary, handle, indent=2)
    return summary


def _write_snv_outputs(chunk_paths, fasta_path, chrom_sizes, out_dir: Path, chosen: set[str], settings, model_name):
    """The all-SNV table and the min-LLR track from the chunks' probabilities (no forward pass)."""
    from dnafm_lib.data.indexed_fasta import open_fasta
    from dnafm_lib.inference.snv_table import chunk_regions, write_snv_outputs

    fasta = open_fasta(fasta_path)
    info = write_snv_outputs(
        lambda: chunk_regions(chunk_paths, fasta),
        chrom_sizes,
        out_dir / catalog.SNV_TABLE if "snv_table" in chosen else None,
        out_dir / catalog.SNV_TRACKS[0].filename if "snv_min_llr" in chosen else None,
        {"model": model_name, "settings": settings},
    )
    return info or None


def _write_per_base_tracks(
    chunk_paths: Sequence[str | Path], chrom_sizes: Sequence[tuple[str, int]], out_dir: Path, keys: Sequence[str]
):
    """Stream every chunk into the per-base bigWigs of ``keys``; return the bin index, the hidden
    size, the chunks' (common) settings, the scored base pairs and each chunk's provenance."""
    specs = {spec.key: spec for spec in catalog.GATHERED_PER_BASE_TRACKS}
    writers = {key: BigWigWriter(out_dir / specs[key].filename, chrom_sizes) for key in keys}
    contigs, starts, ends, hidden, settings, scored_bp, provenances = [], [], [], 0, None, 0, []
    try:
        for path in Progress("gather", len(chunk_paths), unit="chunks").track(chunk_paths):
            chunk = load_chunk(path, bin_means=False)  # the bin means are read one chunk at a time later
            settings = settings or chunk.settings
            provenances.append((str(path), chunk.provenance))
            if chunk.settings != settings:
                raise DnafmError(f"{path}: scored with other settings than {chunk_paths[0]}; rerun the chunks")
            per_base = with_logo_tracks(chunk.per_base)  # the logo tracks come from the probabilities
            for i, region in enumerate(chunk.regions):
                lo, hi = chunk.offsets[i], chunk.offsets[i + 1]
                for key, writer in writers.items():
                    writer.add_bases(region.contig, region.start, per_base[key][lo:hi])
                scored_bp += int(np.count_nonzero(~np.isnan(chunk.per_base["mlm_loss"][lo:hi])))
            contigs.append(chunk.bin_contig)
            starts.append(chunk.bin_start)
            ends.append(chunk.bin_end)
            hidden = max(hidden, chunk.hidden)
    except BaseException as exc:
        for writer in writers.values():
            writer.abort(exc)
        raise
    for writer in writers.values():
        writer.close()

    bins = BinIndex(np.concatenate(contigs), np.concatenate(starts), np.concatenate(ends))
    return bins, hidden, settings, scored_bp, provenances


def _write_embedding_outputs(
    chunk_paths: Sequence[str | Path],
    chrom_sizes: Sequence[tuple[str, int]],
    out_dir: Path,
    bins: BinIndex,
    hidden: int,
    *,
    embeddings: str,
    n_clusters: int,
    seed: int,
    gff_path: str | Path | None,
    tracks: list[str],
) -> dict:
    """The embedding store, bin tracks, segments and enrichment; returns the summary entries they add."""
    if embeddings == "full":
        npy = out_dir / catalog.EMBEDDINGS_NPY
        write_embedding_array(npy, (load_bin_means(p) for p in chunk_paths), len(bins), hidden)
        projection = project_and_cluster(np.load(npy, mmap_mode="r"), n_clusters, seed=seed)
    else:  # the chunk files are read twice (fit sample, then every bin); nothing (n_bins, hidden) is kept
        projection = write_projection(
            out_dir / catalog.EMBEDDING_PCS_NPY,
            out_dir / catalog.EMBEDDING_PCA_NPZ,
            lambda: (load_bin_means(p) for p in chunk_paths),
            len(bins),
            hidden,
            n_clusters,
            seed=seed,
        )
    write_bin_index(out_dir / catalog.EMBEDDING_BINS_BED, bins)
    _write_bin_tracks(out_dir, chrom_sizes, bins, projection.pcs)
    segments = segment_rows(bins, projection.clusters, projection.n_clusters)
    write_bed(out_dir / catalog.SEGMENTS_BED, segments)
    added = dict(
        embedding_store=embeddings,
        n_clusters=projection.n_clusters,
        explained_variance_ratio=[round(float(v), 6) for v in projection.explained_variance_ratio[:3]],
        tracks=tracks + [s.filename for s in catalog.EMBEDDING_TRACKS] + [catalog.SEGMENTS_BED],
    )
    _write_segment_enrichment(out_dir, segments, gff_path)
    if gff_path:
        added["enrichment"] = catalog.ENRICHMENT_TSV
    return added


def _write_segment_enrichment(out_dir: Path, segments, gff_path: str | Path | None) -> None:
    """Segment × annotation enrichment table and plot."""
    # Written with or without an annotation (then empty), so the workflow can declare them.
    if gff_path:
        features = read_gff_features(gff_path)
    else:
        import pandas as pd

        features = pd.DataFrame(columns=["Chromosome", "Start", "End", "Feature"])
    table = enrichment_table(segments, features)
    write_enrichment(table, out_dir / catalog.ENRICHMENT_TSV, out_dir / catalog.ENRICHMENT_PNG)


def _check_coverage(chunk_paths: Sequence[str | Path], chrom_sizes: Sequence[tuple[str, int]]) -> None:
    """The chunks must tile every contig once, in .fai order (a missing chunk is an error, not a gap)."""
    import zipfile

    position: dict[str, int] = {}
    order = [name for name, _ in chrom_sizes]
    rank = {name: i for i, name in enumerate(order)}
    sizes = dict(chrom_sizes)
    last = (-1, 0)
    for path in chunk_paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                regions = list(
                    zip(data["region_contig"].tolist(), data["region_start"].tolist(), data["region_end"].tolist())
                )
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise DnafmError(f"{path}: not a readable tracks chunk file ({exc})") from None
        for contig, start, end in regions:
            if contig not in rank:
                raise DnafmError(f"{path}: contig {contig!r} is not in the chromosome sizes")
            if (rank[contig], start) < last or start != position.get(contig, 0):
                raise DnafmError(
                    f"{path}: region {contig}:{start}-{end} does not follow the previous chunk (expected start {position.get(contig, 0)})"
                )
            position[contig] = end
            last = (rank[contig], end)
    missing = [name for name in order if position.get(name, 0) != sizes[name] and sizes[name] > 0]
    if missing:
        raise DnafmError(
            f"chunks do not cover contig {missing[0]!r} to its end ({position.get(missing[0], 0)} of {sizes[missing[0]]} bp)"
        )


def _write_bin_tracks(out_dir: Path, chrom_sizes, bins: BinIndex, pcs: np.ndarray) -> None:
    order = {name: i for i, (name, _) in enumerate(chrom_sizes)}
    # Bins arrive in chunk (.fai) order; group by contig without reordering.
    boundaries = np.flatnonzero(bins.contig[1:] != bins.contig[:-1]) + 1
    groups = np.split(np.arange(len(bins)), boundaries)
    groups.sort(key=lambda rows: order[str(bins.contig[rows[0]])] if rows.size else -1)
    for column, spec in enumerate(catalog.EMBEDDING_TRACKS):
        with BigWigWriter(out_dir / spec.filename, chrom_sizes) as writer:
            for rows in groups:
                if rows.size:
                    writer.add_intervals(str(bins.contig[rows[0]]), bins.start[rows], bins.end[rows], pcs[rows, column])
