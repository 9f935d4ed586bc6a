"""The tracks a run writes: file names, labels (with units) and colours, in display order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackSpec:
    key: str  # array name in chunk files and stem of the bigWig
    label: str  # what the browser shows, units included
    short_label: str  # at most 17 characters (UCSC shortLabel)
    color: tuple[int, int, int]
    group: str | None = None  # tracks of one group are overlaid (IGV merged track, UCSC multiWig)

    @property
    def filename(self) -> str:
        return f"{self.key}.bw"

    @property
    def hex_color(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.color)

    @property
    def rgb(self) -> str:
        return ",".join(map(str, self.color))


PROBABILITY_GROUP = "probabilities"
BASES = "ACGT"

#: Per-base tracks from the masked-LM passes.
PER_BASE_TRACKS: tuple[TrackSpec, ...] = (
    TrackSpec("mlm_loss", "MLM loss (nats)", "MLM loss", (178, 34, 34)),
    TrackSpec("entropy", "Entropy over A/C/G/T (nats)", "Entropy (nats)", (70, 70, 160)),
    # Nucleotide colours as IGV draws bases.
    TrackSpec("prob_A", "P(A) (probability)", "P(A)", (0, 150, 0), PROBABILITY_GROUP),
    TrackSpec("prob_C", "P(C) (probability)", "P(C)", (0, 0, 200), PROBABILITY_GROUP),
    TrackSpec("prob_G", "P(G) (probability)", "P(G)", (209, 113, 5), PROBABILITY_GROUP),
    TrackSpec("prob_T", "P(T) (probability)", "P(T)", (200, 0, 0), PROBABILITY_GROUP),
)

#: Per-bin tracks from the embeddings.
EMBEDDING_TRACKS: tuple[TrackSpec, ...] = tuple(
    TrackSpec(f"embedding_pc{i}", f"Embedding PC{i} (PCA score)", f"Embedding PC{i}", color)
    for i, color in ((1, (90, 60, 140)), (2, (40, 120, 120)), (3, (140, 110, 40)))
)

SEGMENTS_BED = "segments.bed"
SEGMENTS_LABEL = "Embedding clusters (k-means segments)"
EMBEDDINGS_NPY = "embeddings_f16.npy"
EMBEDDING_BINS_BED = "embedding_bins.bed"
ENRICHMENT_TSV = "enrichment.tsv"
ENRICHMENT_PNG = "enrichment.png"
SUMMARY_JSON = "tracks.json"
