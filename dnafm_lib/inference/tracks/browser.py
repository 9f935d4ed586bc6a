"""Browser step: a tracks directory's igv_session.xml, igv.html (+ igv.min.js) and UCSC hub."""

from __future__ import annotations

from pathlib import Path


def write_browser_files(
    out_dir: str | Path,
    fasta: str | Path,
    genome_name: str,
    model_name: str,
    igv_js: str | Path,
    *,
    annotation: str | Path | None = None,
    assembly: str | None = None,
    hub_email: str = "",
) -> None:
    from dnafm_lib.inference.tracks.hub import check_hub_names, write_hub
    from dnafm_lib.inference.tracks.igv import BrowserInputs, write_igv_html, write_igv_session

    check_hub_names(genome_name, assembly or genome_name, model_name, hub_email)  # before any file is written
    inputs = BrowserInputs(
        Path(out_dir), genome_name, model_name, Path(fasta), annotation=Path(annotation) if annotation else None
    )
    write_igv_session(inputs)
    write_igv_html(inputs, Path(igv_js))
    write_hub(Path(out_dir), genome_name, assembly or genome_name, model_name, email=hub_email)
