"""A UCSC track hub over the bigWigs: ``hub/hub.txt``, ``hub/genomes.txt``, ``hub/{genome}/trackDb.txt``.

The four probabilities form a ``multiWig`` container (stacked, so each base's column sums to 1,
a sequence-logo-like view). ``bigDataUrl`` paths are relative to trackDb.txt, so the hub works
wherever the output directory is served. The segments stay BED (UCSC hubs take bigBed only,
which needs bedToBigBed): open them in IGV, or convert them yourself.
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_open
from . import catalog

HUB_DIR = "hub"


def _short(label: str, limit: int = 17) -> str:
    """UCSC shortLabels hold 17 characters."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def write_hub(out_dir: Path, genome_name: str, assembly: str, model_name: str, email: str = "") -> Path:
    """Write the hub files under ``out_dir/hub`` and return the path of ``hub.txt``."""
    out_dir = Path(out_dir)
    hub_dir = out_dir / HUB_DIR
    db_dir = hub_dir / assembly
    to_tracks = "../.."  # from hub/{assembly}/trackDb.txt back to out_dir
    with atomic_open(hub_dir / "hub.txt") as handle:
        handle.write(
            f"hub dnafm_{genome_name}_{model_name}\n"
            f"shortLabel {_short(f'dnafm {genome_name}')}\n"
            f"longLabel dnafm masked-LM and embedding tracks for {genome_name} (model {model_name})\n"
            "genomesFile genomes.txt\n"
            f"email {email or 'unknown'}\n"
        )
    with atomic_open(hub_dir / "genomes.txt") as handle:
        handle.write(f"genome {assembly}\ntrackDb {assembly}/trackDb.txt\n")

    stanzas = []
    for spec in catalog.PER_BASE_TRACKS:
        if spec.group is None and (out_dir / spec.filename).exists():
            stanzas.append(_bigwig_stanza(spec, to_tracks, model_name))
    members = [s for s in catalog.PER_BASE_TRACKS if s.group == catalog.PROBABILITY_GROUP and (out_dir / s.filename).exists()]
    if members:
        stanzas.append(
            "\n".join([
                f"track {catalog.PROBABILITY_GROUP}",
                "container multiWig",
                "shortLabel P(A/C/G/T)",
                f"longLabel A/C/G/T probabilities (masked-LM, model {model_name})",
                "type bigWig 0 1",
                "aggregate stacked",
                "showSubtrackColorOnUi on",
                "visibility full",
                "autoScale off",
                "viewLimits 0:1",
                "maxHeightPixels 100:60:16",
            ])
        )
        for spec in members:
            stanzas.append("    " + _bigwig_stanza(spec, to_tracks, model_name, parent=catalog.PROBABILITY_GROUP,
                                                    bounds="0 1").replace("\n", "\n    "))
    for spec in catalog.EMBEDDING_TRACKS:
        if (out_dir / spec.filename).exists():
            stanzas.append(_bigwig_stanza(spec, to_tracks, model_name))
    with atomic_open(db_dir / "trackDb.txt") as handle:
        handle.write("\n\n".join(stanzas) + "\n")
    return hub_dir / "hub.txt"


def _bigwig_stanza(spec: catalog.TrackSpec, to_tracks: str, model_name: str, parent: str | None = None,
                   bounds: str = "") -> str:
    lines = [
        f"track {spec.key}",
        *( [f"parent {parent}"] if parent else [] ),
        f"bigDataUrl {to_tracks}/{spec.filename}",
        f"shortLabel {_short(spec.short_label)}",
        f"longLabel {spec.label}, model {model_name}",
        f"type bigWig {bounds}".rstrip(),
        f"color {spec.rgb}",
    ]
    if parent is None:
        lines += ["visibility full", "autoScale on", "maxHeightPixels 100:50:16"]
    return "\n".join(lines)
