"""A UCSC track hub over the bigWigs: ``hub/hub.txt``, ``hub/genomes.txt``, ``hub/{genome}/trackDb.txt``.

Each probability is its own track; the four logo tracks form a ``multiWig`` container
(stacked, ``logo on``: UCSC draws letters as tall as the values when zoomed in to bases, as
GPN's published hubs do). ``bigDataUrl`` paths are relative to trackDb.txt, so the hub works
wherever the output directory is served. The segments stay BED (UCSC hubs take bigBed only,
which needs bedToBigBed): open them in IGV, or convert them yourself.
"""

from __future__ import annotations

import re
from pathlib import Path

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.names import check_path_name
from dnafm_lib.inference.tracks import catalog

HUB_DIR = "hub"


def _short(label: str, limit: int = 17) -> str:
    """UCSC shortLabels hold 17 characters."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def check_hub_names(genome_name: str, assembly: str, model_name: str, email: str = "") -> None:
    """The assembly becomes a folder under hub/, and all the names are words of the hub's text
    files: a '/', '..' or a line break would escape the folder or the stanza."""
    check_path_name(genome_name, "genome name")
    check_path_name(model_name, "model name")
    check_path_name(assembly, "hub assembly")
    if email and not re.fullmatch(r"\S+", email):
        raise DnafmError(f"hub email {email!r}: holds white space or a line break")


def write_hub(out_dir: Path, genome_name: str, assembly: str, model_name: str, email: str = "") -> Path:
    """Write the hub files under ``out_dir/hub`` and return the path of ``hub.txt``."""
    check_hub_names(genome_name, assembly, model_name, email)
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

    def present(specs):
        return [spec for spec in specs if (out_dir / spec.filename).exists()]

    stanzas = [
        _bigwig_stanza(spec, to_tracks, model_name) for spec in present(catalog.PER_BASE_TRACKS + catalog.SNV_TRACKS)
    ]
    letters = present(catalog.LOGO_TRACKS)
    if letters:
        # Stacked, the four letter heights of a base sum to its information content; `logo on`
        # draws them as letters once the view is zoomed in to single bases.
        stanzas.append(
            "\n".join(
                [
                    f"track {catalog.LOGO_GROUP}",
                    "container multiWig",
                    "shortLabel Logo (bits)",
                    f"longLabel Sequence logo: P(base) x information content, 0-2 bits (masked-LM, model {model_name})",
                    f"type bigWig 0 {catalog.MAX_INFORMATION_BITS:g}",
                    "aggregate stacked",
                    "logo on",
                    "showSubtrackColorOnUi on",
                    "visibility full",
                    "autoScale on",  # as GPN's hub: letters of a lightly trained model are small
                    "maxHeightPixels 100:60:16",
                ]
            )
        )
        for spec in letters:
            stanzas.append(
                "    "
                + _bigwig_stanza(
                    spec, to_tracks, model_name, parent=catalog.LOGO_GROUP, bounds=(0.0, catalog.MAX_INFORMATION_BITS)
                ).replace("\n", "\n    ")
            )
    stanzas += [_bigwig_stanza(spec, to_tracks, model_name) for spec in present(catalog.EMBEDDING_TRACKS)]
    with atomic_open(db_dir / "trackDb.txt") as handle:
        handle.write("\n\n".join(stanzas) + "\n")
    return hub_dir / "hub.txt"


def _bigwig_stanza(
    spec: catalog.TrackSpec,
    to_tracks: str,
    model_name: str,
    parent: str | None = None,
    bounds: tuple[float, float] | None = None,
) -> str:
    low, high = bounds or spec.view_range or (None, None)
    lines = [
        f"track {spec.key}",
        *([f"parent {parent}"] if parent else []),
        f"bigDataUrl {to_tracks}/{spec.filename}",
        f"shortLabel {_short(spec.short_label)}",
        f"longLabel {spec.label}, model {model_name}",
        f"type bigWig {low:g} {high:g}" if low is not None else "type bigWig",
        f"color {spec.rgb}",
    ]
    if parent is None:
        lines += ["visibility full", "maxHeightPixels 100:40:16"]
        lines += ["autoScale off", f"viewLimits {low:g}:{high:g}"] if spec.view_range else ["autoScale on"]
    return "\n".join(lines)
