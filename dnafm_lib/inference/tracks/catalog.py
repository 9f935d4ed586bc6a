"""The tracks a run writes: file names, labels (with units and scale) and colours, in display order."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dnafm_lib.core.errors import DnafmError


@dataclass(frozen=True)
class TrackSpec:
    key: str  # array name in chunk files and stem of the bigWig
    label: str  # what the browser shows, units and fixed scale included; short enough for IGV's name panel
    short_label: str  # at most 17 characters (UCSC shortLabel)
    color: tuple[int, int, int]
    group: str | None = None  # tracks of one group form one UCSC multiWig container
    #: fixed y-axis (min, max) in every browser; None = autoscale (PCA scores have no natural range)
    view_range: tuple[float, float] | None = None
    #: autoscaled tracks of one group share one y-axis (the four logo letters)
    autoscale_group: str | None = None

    @property
    def filename(self) -> str:
        return f"{self.key}.bw"

    @property
    def hex_color(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.color)

    @property
    def rgb(self) -> str:
        return ",".join(map(str, self.color))


BASES = "ACGT"
#: Nucleotide colours as IGV draws bases in its sequence track.
BASE_COLORS = {"A": (0, 150, 0), "C": (0, 0, 200), "G": (209, 113, 5), "T": (200, 0, 0)}
#: ln 4: entropy of a uniform A/C/G/T guess, and the loss of that guess, in nats.
CHANCE_NATS = math.log(4)
#: Information content of one base position ranges from 0 to log2(4) = 2 bits.
MAX_INFORMATION_BITS = 2.0
LOGO_GROUP = "logo"

#: Per-base tracks from the masked-LM passes (the arrays of every chunk file).
PER_BASE_TRACKS: tuple[TrackSpec, ...] = (
    # Loss above ln 4 is worse than guessing; the fixed scale shows up to twice that.
    TrackSpec(
        "mlm_loss",
        "MLM loss, nats (0-2.77)",
        "MLM loss (nats)",
        (178, 34, 34),
        view_range=(0.0, round(2 * CHANCE_NATS, 2)),
    ),
    TrackSpec(
        "entropy", "Entropy, nats (0-1.39)", "Entropy (nats)", (70, 70, 160), view_range=(0.0, round(CHANCE_NATS, 2))
    ),
    *(
        TrackSpec(f"prob_{b}", f"P({b}), probability (0-1)", f"P({b})", BASE_COLORS[b], view_range=(0.0, 1.0))
        for b in BASES
    ),
)

#: Sequence-logo tracks, derived from the probabilities when the chunks are gathered
#: (tracks/logo.py): letter height = P(base) × information content, in bits. The four of a
#: position sum to its information content, 2 − entropy in bits, at most 2. They share one
#: autoscaled axis: a lightly trained model's letters are a small fraction of 2 bits.
LOGO_TRACKS: tuple[TrackSpec, ...] = tuple(
    TrackSpec(
        f"logo_{b}",
        f"Logo {b}, bits (of max 2)",
        f"Logo {b} (bits)",
        BASE_COLORS[b],
        LOGO_GROUP,
        autoscale_group=LOGO_GROUP,
    )
    for b in BASES
)

#: Every per-base bigWig gather writes, in display order.
GATHERED_PER_BASE_TRACKS: tuple[TrackSpec, ...] = PER_BASE_TRACKS + LOGO_TRACKS

#: From the all-SNV table's pass (inference/snv_table.py): each base's lowest llr over its three
#: possible SNVs, ln P(alt) − ln P(ref) — where a mutation hurts most. Autoscaled: a trained
#: model's values reach far below a lightly trained one's.
SNV_TRACKS: tuple[TrackSpec, ...] = (TrackSpec("snv_min_llr", "Min SNV LLR, nats", "Min SNV LLR", (120, 40, 120)),)
SNV_TABLE = "snv_scores.tsv.bgz"
SNV_TABLE_INDEX = f"{SNV_TABLE}.tbi"

#: What a cohort may choose to write (``tracks.outputs``): output name → its files.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "mlm_loss": ("mlm_loss.bw",),
    "entropy": ("entropy.bw",),
    "probs": tuple(f"prob_{b}.bw" for b in BASES),
    "logo": tuple(f"logo_{b}.bw" for b in BASES),
    "snv_table": (SNV_TABLE, SNV_TABLE_INDEX),
    "snv_min_llr": tuple(spec.filename for spec in SNV_TRACKS),
}
DEFAULT_OUTPUTS: tuple[str, ...] = tuple(OUTPUTS)


def output_files(outputs: tuple[str, ...] | list[str]) -> list[str]:
    """The per-base files of the chosen outputs, in catalog order (what rule gather_tracks declares)."""
    unknown = [name for name in outputs if name not in OUTPUTS]
    if unknown:
        raise DnafmError(f"tracks outputs {', '.join(unknown)}: expected some of {', '.join(OUTPUTS)}")
    return [name for key in OUTPUTS if key in outputs for name in OUTPUTS[key]]


#: Per-bin tracks from the embeddings.
EMBEDDING_TRACKS: tuple[TrackSpec, ...] = tuple(
    TrackSpec(f"embedding_pc{i}", f"Embedding PC{i} (PCA score)", f"Embedding PC{i}", color)
    for i, color in ((1, (90, 60, 140)), (2, (40, 120, 120)), (3, (140, 110, 40)))
)

#: bigWig file names of the per-base tracks (what rule gather_tracks declares).
PER_BASE_FILES: tuple[str, ...] = tuple(spec.filename for spec in GATHERED_PER_BASE_TRACKS)

SEGMENTS_BED = "segments.bed"
SEGMENTS_LABEL = "Embedding clusters"
EMBEDDINGS_NPY = "embeddings_f16.npy"
EMBEDDING_PCS_NPY = "embedding_pcs_f16.npy"
EMBEDDING_PCA_NPZ = "embedding_pca.npz"
#: tracks.embeddings "full": the (bins × hidden) float16 array; "pcs": its top PCs and the PCA.
EMBEDDING_STORE_FILES: dict[str, tuple[str, ...]] = {
    "full": (EMBEDDINGS_NPY,),
    "pcs": (EMBEDDING_PCS_NPY, EMBEDDING_PCA_NPZ),
}
EMBEDDING_BINS_BED = "embedding_bins.bed"
ENRICHMENT_TSV = "enrichment.tsv"
ENRICHMENT_PNG = "enrichment.png"
SUMMARY_JSON = "tracks.json"
IGV_SESSION_XML = "igv_session.xml"
IGV_HTML = "igv.html"
