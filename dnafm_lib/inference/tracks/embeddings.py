"""Genome-wide embedding bins: the float16 array, PCA, k-means segments, GFF enrichment.

The bin means of every chunk are stacked into one ``(n_bins, hidden)`` float16 ``.npy`` (written
through a memmap, chunk by chunk), indexed by a BED whose name column is the row; or, the ``pcs``
store for large genomes and wide models, only every bin's top PCs (``(n_bins, 16)`` float16) and
the PCA that maps them back. PCA and k-means are fitted on at most ``max_fit_bins`` bins (and
``FIT_SAMPLE_BYTES``) drawn with a fixed seed and then applied block by block, so memory stays
bounded by the sample and the block, not the genome.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from dnafm_lib.core.atomic import atomic_open, atomic_path
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks.catalog import EMBEDDING_STORE_FILES
from dnafm_lib.inference.tracks.writers import write_bed

PCA_COMPONENTS = 16  # k-means runs in this space; PC1–PC3 become tracks
#: How the bin embeddings are kept: the full float16 array, or (large genomes, wide models) the top PCs.
EMBEDDING_STORES = tuple(EMBEDDING_STORE_FILES)  # "full", "pcs"
#: The ``pcs`` store's files: every bin's top PCs, and the PCA (mean, components) that made them.
BLOCK_ROWS = 65536


@dataclass
class BinIndex:
    contig: np.ndarray  # (n,) str
    start: np.ndarray  # (n,) int64
    end: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return int(self.start.size)


def write_embedding_array(path: str | Path, parts: Iterable[np.ndarray], n_bins: int, hidden: int) -> None:
    """Stack per-chunk bin means into one float16 ``.npy`` without holding it in memory."""
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n_bins, hidden))
        row = 0
        for part in parts:
            array[row : row + part.shape[0]] = part.astype(np.float16)
            row += part.shape[0]
        if row != n_bins:
            raise DnafmError(f"{path}: expected {n_bins} embedding bins, got {row}")
        array.flush()
        del array


def write_bin_index(path: str | Path, bins: BinIndex) -> None:
    """BED of the bins; column 4 is the row in the embedding array."""
    rows = ((c, int(s), int(e), i) for i, (c, s, e) in enumerate(zip(bins.contig, bins.start, bins.end)))
    write_bed(path, rows)


@dataclass
class Projection:
    pcs: np.ndarray  # (n_bins, 3) float32: PC1–PC3 (NaN columns when fewer components)
    clusters: np.ndarray  # (n_bins,) int32
    explained_variance_ratio: np.ndarray
    n_clusters: int
    mean: np.ndarray | None = None  # (hidden,) the PCA's centre
    components: np.ndarray | None = None  # (n_components, hidden) the PCA's axes


#: Bytes of float32 bins PCA and k-means are fitted on, at most (a 7B model's 4352-wide bins: 30,800 rows).
FIT_SAMPLE_BYTES = 512 * 2**20


def fit_sample_size(n_bins: int, hidden: int, max_fit_bins: int = 100_000) -> int:
    return max(1, min(n_bins, max_fit_bins, FIT_SAMPLE_BYTES // (4 * max(hidden, 1))))


def pca_components(n_bins: int, hidden: int, max_fit_bins: int = 100_000) -> int:
    """How many PCs the projection keeps: what the fit sample allows, at most ``PCA_COMPONENTS``."""
    return max(1, min(PCA_COMPONENTS, hidden, fit_sample_size(n_bins, hidden, max_fit_bins)))


def array_blocks(embeddings: np.ndarray, block_rows: int = BLOCK_ROWS) -> Callable[[], Iterator[np.ndarray]]:
    """Row blocks of an (n_bins, hidden) array or memmap, in order (read one block at a time)."""

    def blocks() -> Iterator[np.ndarray]:
        for lo in range(0, embeddings.shape[0], block_rows):
            yield embeddings[lo : lo + block_rows]

    return blocks


def gather_rows(blocks: Iterable[np.ndarray], rows: np.ndarray, hidden: int) -> np.ndarray:
    """The given sorted global rows of consecutive row blocks, as float32."""
    out = np.empty((rows.size, hidden), dtype=np.float32)
    first = taken = 0
    for block in blocks:
        stop = np.searchsorted(rows, first + block.shape[0])
        if stop > taken:
            out[taken:stop] = np.asarray(block[rows[taken:stop] - first], dtype=np.float32)
            taken = int(stop)
        first += block.shape[0]
    if taken != rows.size:
        raise DnafmError(f"embedding bins: expected at least {int(rows[-1]) + 1} rows, got {first}")
    return out


def project_and_cluster(
    embeddings: np.ndarray,
    n_clusters: int,
    seed: int = 0,
    max_fit_bins: int = 100_000,
    pcs_out: np.ndarray | None = None,
) -> Projection:
    """PCA (fitted on a sample) → PC1–PC3 per bin; k-means in the first PCs → a cluster per bin."""
    n_bins, hidden = embeddings.shape
    return project_and_cluster_blocks(
        array_blocks(embeddings), n_bins, hidden, n_clusters, seed=seed, max_fit_bins=max_fit_bins, pcs_out=pcs_out
    )


def project_and_cluster_blocks(
    blocks: Callable[[], Iterable[np.ndarray]],
    n_bins: int,
    hidden: int,
    n_clusters: int,
    seed: int = 0,
    max_fit_bins: int = 100_000,
    pcs_out: np.ndarray | None = None,
) -> Projection:
    """``project_and_cluster`` over bins that arrive as row blocks (``blocks()`` is read twice).

    Memory holds the fit sample (``fit_sample_size`` rows), one block and the per-bin PC1–PC3 and
    cluster, never the (n_bins, hidden) array. ``pcs_out`` (n_bins, n_components), e.g. a float16
    memmap, receives every bin's leading PCs.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    if n_bins == 0:
        return Projection(np.zeros((0, 3), np.float32), np.zeros(0, np.int32), np.zeros(0), 0)
    rng = np.random.default_rng(seed)
    sample_rows = np.sort(rng.choice(n_bins, size=fit_sample_size(n_bins, hidden, max_fit_bins), replace=False))
    sample = gather_rows(blocks(), sample_rows, hidden)
    n_components = pca_components(n_bins, hidden, max_fit_bins)  # sample.shape[0] is the fit sample size
    pca = PCA(n_components=n_components, random_state=seed).fit(sample)
    n_clusters = max(1, min(n_clusters, len(np.unique(sample, axis=0))))
    kmeans = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(pca.transform(sample))
    del sample
    pcs = np.full((n_bins, 3), np.nan, dtype=np.float32)
    clusters = np.empty(n_bins, dtype=np.int32)
    lo = 0
    for part in blocks():
        # BLOCK_ROWS at a time: chunk files may hold more bins than that
        for sub in range(0, part.shape[0], BLOCK_ROWS):
            block = pca.transform(np.asarray(part[sub : sub + BLOCK_ROWS], dtype=np.float32))
            hi = lo + block.shape[0]
            pcs[lo:hi, : min(3, n_components)] = block[:, :3]
            clusters[lo:hi] = kmeans.predict(block)
            if pcs_out is not None:
                pcs_out[lo:hi, :n_components] = block
            lo = hi
    if lo != n_bins:
        raise DnafmError(f"embedding bins: expected {n_bins} rows, got {lo}")
    return Projection(pcs, clusters, pca.explained_variance_ratio_, n_clusters, pca.mean_, pca.components_)


def write_projection(
    npy_path: str | Path,
    pca_path: str | Path,
    blocks: Callable[[], Iterable[np.ndarray]],
    n_bins: int,
    hidden: int,
    n_clusters: int,
    seed: int = 0,
) -> Projection:
    """The ``pcs`` store: every bin's top PCs as float16 ``.npy`` (n_bins, n_components) and the
    PCA (mean, components, explained variance ratio) as ``.npz``, instead of the full array."""
    n_components = pca_components(n_bins, hidden)
    with atomic_path(npy_path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n_bins, n_components))
        projection = project_and_cluster_blocks(blocks, n_bins, hidden, n_clusters, seed=seed, pcs_out=array)
        array.flush()
        del array
    with atomic_path(pca_path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            mean=projection.mean,
            components=projection.components,
            explained_variance_ratio=projection.explained_variance_ratio,
        )
    return projection


def cluster_colors(n_clusters: int) -> list[tuple[int, int, int]]:
    """Distinct colours (matplotlib's tab10/tab20) for itemRgb."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n_clusters <= 10 else "tab20"]
    return [tuple(int(round(255 * c)) for c in cmap(i % cmap.N)[:3]) for i in range(n_clusters)]


def segment_rows(bins: BinIndex, clusters: np.ndarray, n_clusters: int) -> list[tuple]:
    """BED9 rows: runs of adjacent bins of one cluster merged; a gap (unscored bins) breaks a run."""
    colors = cluster_colors(n_clusters)
    rows = []
    n = len(bins)
    i = 0
    while i < n:
        j = i
        while (
            j + 1 < n
            and clusters[j + 1] == clusters[i]
            and bins.contig[j + 1] == bins.contig[i]
            and bins.start[j + 1] == bins.end[j]
        ):
            j += 1
        k = int(clusters[i])
        start, end = int(bins.start[i]), int(bins.end[j])
        rows.append(
            (str(bins.contig[i]), start, end, f"cluster_{k}", 0, ".", start, end, ",".join(map(str, colors[k])))
        )
        i = j + 1
    return rows


# --------------------------------------------------------------------------- GFF enrichment


def read_gff_features(path: str | Path) -> "pandas.DataFrame":  # noqa: F821
    """(Chromosome, Start, End, Feature) of every GFF3 record, 0-based half-open."""
    import pandas as pd

    from dnafm_lib.data.gff import read_features

    records = [
        (f.seqid, f.start, f.end, f.type) for f in read_features(path) if f.end > f.start
    ]  # a zero-length insertion site covers no base
    return pd.DataFrame(records, columns=["Chromosome", "Start", "End", "Feature"])


def enrichment_table(segments: Sequence[tuple], features: "pandas.DataFrame") -> "pandas.DataFrame":  # noqa: F821
    """Cluster × feature type: observed bp overlap, expected bp (independence), observed/expected.

    Expected = cluster bp × feature bp (inside scored segments) / scored bp. Overlapping features
    of one type are merged first, so no base counts twice.
    """
    import pandas as pd
    import pyranges as pr

    columns = ["cluster", "feature_type", "observed_bp", "expected_bp", "obs_exp", "cluster_bp", "feature_bp"]
    seg = pd.DataFrame([(r[0], r[1], r[2], r[3]) for r in segments], columns=["Chromosome", "Start", "End", "Cluster"])
    if seg.empty or features.empty:
        return pd.DataFrame(columns=columns)
    seg_ranges = pr.PyRanges(seg)
    scored_bp = int((seg.End - seg.Start).sum())
    cluster_bp = (seg.End - seg.Start).groupby(seg.Cluster).sum()
    rows = []
    for feature_type, group in features.groupby("Feature", sort=True):
        merged = pr.PyRanges(group[["Chromosome", "Start", "End"]]).merge()
        inside = seg_ranges.intersect(merged).df
        observed = (
            (inside.End - inside.Start).groupby(inside.Cluster).sum() if not inside.empty else pd.Series(dtype=np.int64)
        )
        feature_bp = int(observed.sum())
        for cluster, bp in cluster_bp.items():
            obs = int(observed.get(cluster, 0))
            expected = bp * feature_bp / scored_bp
            rows.append(
                (cluster, feature_type, obs, expected, obs / expected if expected > 0 else np.nan, int(bp), feature_bp)
            )
    table = pd.DataFrame(rows, columns=columns)
    order = sorted(table.cluster.unique(), key=lambda name: int(name.rsplit("_", 1)[1]))
    table["cluster"] = pd.Categorical(table.cluster, categories=order, ordered=True)
    return table.sort_values(["cluster", "feature_type"]).reset_index(drop=True).astype({"cluster": str})


def _headless_pyplot():
    """pyplot on the Agg backend, chosen before pyplot is imported (cluster nodes have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_enrichment(table: "pandas.DataFrame", tsv_path: str | Path, png_path: str | Path) -> None:  # noqa: F821
    """The table as TSV, and its heatmap (``enrichment_figure``) as PNG."""
    plt = _headless_pyplot()
    with atomic_open(tsv_path) as handle:
        table.to_csv(handle, sep="\t", index=False, float_format="%.6g")
    fig = enrichment_figure(table)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def enrichment_figure(table: "pandas.DataFrame"):  # noqa: F821
    """Heatmap cluster × feature type of log2(observed/expected), the ratio printed in each cell."""
    plt = _headless_pyplot()

    n_features, n_clusters = table.feature_type.nunique(), table.cluster.nunique()
    fig, ax = plt.subplots(figsize=(max(4.5, 0.75 * n_features + 3), max(3, 0.45 * n_clusters + 1.8)))
    if table.empty:
        ax.text(0.5, 0.5, "no overlap between segments and annotation", ha="center", va="center")
        ax.set_axis_off()
    else:
        matrix = table.pivot(index="cluster", columns="feature_type", values="obs_exp")
        matrix = matrix.loc[sorted(matrix.index, key=lambda name: int(name.rsplit("_", 1)[1]))]
        ratios = matrix.to_numpy(dtype=float)
        with np.errstate(divide="ignore"):
            log2 = np.log2(ratios)
        finite = np.abs(log2[np.isfinite(log2)])
        limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        image = ax.imshow(np.clip(log2, -limit, limit), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        for row, col in np.ndindex(ratios.shape):
            shade = abs(np.clip(log2[row, col], -limit, limit)) / limit if np.isfinite(log2[row, col]) else 1.0
            ax.text(
                col,
                row,
                _ratio_text(ratios[row, col]),
                ha="center",
                va="center",
                fontsize=9,
                color="white" if shade > 0.6 else "black",
            )
        ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=45, ha="right")
        ax.set_yticks(range(matrix.shape[0]), matrix.index)
        # Each cluster's name in its segments.bed colour, so the heatmap reads with the track.
        colors = cluster_colors(max(int(name.rsplit("_", 1)[1]) for name in matrix.index) + 1)
        for label, name in zip(ax.get_yticklabels(), matrix.index):
            label.set_color(np.array(colors[int(name.rsplit("_", 1)[1])]) / 255)
            label.set_fontweight("bold")
        fig.colorbar(image, ax=ax, label="log2(observed / expected)")
        ax.set_title("Embedding clusters × annotation: observed / expected bp")
    fig.tight_layout()
    return fig


def _ratio_text(ratio: float) -> str:
    """Observed/expected as printed in a heatmap cell: two decimals (none from 10 up), "-" when undefined."""
    if not np.isfinite(ratio):
        return "-"
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.0f}"
