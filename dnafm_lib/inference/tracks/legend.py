"""The legend of the segments track: each cluster's colour, share of the genome and top feature type.

Read back from the files gather wrote (``segments.bed``, ``enrichment.tsv``), so the legend
always says what those files hold.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from dnafm_lib.core.errors import DnafmError


@dataclass(frozen=True)
class ClusterLegend:
    cluster: str  # the name column of segments.bed
    rgb: tuple[int, int, int]  # its itemRgb
    bp: int  # bases in its segments
    share: float  # of all bases in segments
    top_feature: str | None = None  # annotation feature type with the highest observed/expected above 1
    top_obs_exp: float | None = None

    @property
    def hex_color(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


def cluster_order(name: str) -> tuple[int, int, str]:
    """``cluster_10`` after ``cluster_9``; names without a number last."""
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail), name) if tail.isdigit() else (1, 0, name)


def read_segment_legend(segments_bed: str | Path, enrichment_tsv: str | Path | None = None) -> list[ClusterLegend]:
    """One entry per cluster of ``segments_bed`` (BED9), in cluster order; the top feature from the table."""
    colors: dict[str, tuple[int, int, int]] = {}
    sizes: dict[str, int] = {}
    with open(segments_bed) as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip() or line.startswith(("track", "browser", "#")):
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                start, end, name, rgb = int(fields[1]), int(fields[2]), fields[3], fields[8]
                color = tuple(int(x) for x in rgb.split(","))
            except (IndexError, ValueError):
                raise DnafmError(f"{segments_bed}: line {line_number}: expected BED9 with itemRgb") from None
            if len(color) != 3:
                raise DnafmError(f"{segments_bed}: line {line_number}: itemRgb {rgb!r} is not r,g,b")
            colors.setdefault(name, color)  # type: ignore[arg-type]
            sizes[name] = sizes.get(name, 0) + end - start
    top = _top_features(enrichment_tsv) if enrichment_tsv and Path(enrichment_tsv).exists() else {}
    total = sum(sizes.values()) or 1
    return [
        ClusterLegend(name, colors[name], sizes[name], sizes[name] / total, *top.get(name, (None, None)))
        for name in sorted(colors, key=cluster_order)
    ]


def _top_features(enrichment_tsv: str | Path) -> dict[str, tuple[str, float]]:
    """Cluster → (feature type, observed/expected) of its most enriched feature type, if any is above 1."""
    best: dict[str, tuple[str, float]] = {}
    with open(enrichment_tsv, newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            try:
                ratio, observed = float(row["obs_exp"]), float(row["observed_bp"])
            except (KeyError, TypeError, ValueError):
                continue  # an empty table (no annotation) has a header only
            if observed > 0 and math.isfinite(ratio) and ratio > 1 and ratio > best.get(row["cluster"], ("", 1.0))[1]:
                best[row["cluster"]] = (row["feature_type"], ratio)
    return best
