"""What a biologist opens: an IGV desktop session and an igv.js page over the same tracks.

Both refer to the tracks and the genome by paths relative to the output directory, so the
directory can be moved together with the genome directory, or served over HTTP from a common
root (``python -m http.server -d results``). The page loads igv.js from a copy of the npm
package's dist file placed next to it and names the local FASTA explicitly, so it fetches
nothing from the internet.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from dnafm_lib.core.atomic import atomic_open, atomic_path
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks import catalog

#: igv.js release the page is built and tested with (npm package ``igv``).
IGV_JS_VERSION = "3.8.10"
IGV_JS_DIST = "igv.min.js"


@dataclass(frozen=True)
class BrowserInputs:
    """What the browser files point at, all relative to ``out_dir``."""

    out_dir: Path
    genome_name: str
    model_name: str
    fasta: Path
    annotation: Path | None = None
    locus: str | None = None

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(Path(path).resolve(), self.out_dir.resolve())).as_posix()

    def has(self, filename: str) -> bool:
        return (self.out_dir / filename).exists()


def default_locus(fai_path: Path, span_bp: int = 10_000) -> str:
    """The first ``span_bp`` of the first contig."""
    with open(fai_path) as handle:
        first = handle.readline().split("\t")
    if len(first) < 2:
        raise DnafmError(f"{fai_path}: empty FASTA index")
    return f"{first[0]}:1-{min(int(first[1]), span_bp)}"


def _fai(fasta: Path) -> Path:
    return Path(str(fasta) + ".fai")


def _gzi(fasta: Path) -> Path | None:
    gzi = Path(str(fasta) + ".gzi")
    return gzi if gzi.exists() else None


# --------------------------------------------------------------------------- IGV desktop session


def write_igv_session(inputs: BrowserInputs, path: Path | None = None) -> Path:
    """``igv_session.xml``: genome FASTA, one track per bigWig (fixed scales), relative paths."""
    path = path or inputs.out_dir / catalog.IGV_SESSION_XML
    session = ET.Element(
        "Session",
        genome=inputs.rel(inputs.fasta),
        hasGeneTrack="false",
        hasSequenceTrack="true",
        locus=inputs.locus or default_locus(_fai(inputs.fasta)),
        version="8",
    )
    resources = ET.SubElement(session, "Resources")
    data_panel = ET.SubElement(session, "Panel", name="DataPanel")
    feature_panel = ET.SubElement(session, "Panel", name="FeaturePanel")
    ET.SubElement(
        feature_panel,
        "Track",
        clazz="org.broad.igv.track.SequenceTrack",
        id="Reference sequence",
        name="Reference sequence",
        visible="true",
    )
    _add_bigwig_tracks(session, resources, data_panel, inputs)
    if inputs.has(catalog.SEGMENTS_BED):
        # Expanded: each segment's name (its cluster) is written under it.
        _add_feature_track(
            resources, feature_panel, catalog.SEGMENTS_BED, "bed", catalog.SEGMENTS_LABEL, catalog.SEGMENTS_LABEL
        )
    if inputs.annotation is not None:
        _add_feature_track(
            resources, feature_panel, inputs.rel(inputs.annotation), "gff3", "Annotation", "Annotation (GFF3)"
        )
    ET.indent(session)
    with atomic_path(path) as tmp:
        ET.ElementTree(session).write(tmp, encoding="UTF-8", xml_declaration=True)
    return path


def _add_bigwig_tracks(session: ET.Element, resources: ET.Element, data_panel: ET.Element, inputs: BrowserInputs):
    """A resource and a data-panel track for each bigWig present, with its fixed (or autoscaled) range."""
    specs = _present(inputs, catalog.GATHERED_PER_BASE_TRACKS + catalog.SNV_TRACKS + catalog.EMBEDDING_TRACKS)
    # IGV numbers its autoscale groups from 1 and remembers the next free one in the session.
    groups = {
        name: str(i) for i, name in enumerate(dict.fromkeys(s.autoscale_group for s in specs if s.autoscale_group), 1)
    }
    session.set("nextAutoscaleGroup", str(len(groups) + 1))
    for spec in specs:
        ET.SubElement(resources, "Resource", name=spec.label, path=spec.filename, type="bigwig")
        low, high = spec.view_range or (0.0, 1.0)  # the range IGV starts from when it autoscales
        extra = {"autoscaleGroup": groups[spec.autoscale_group]} if spec.autoscale_group else {}
        track = ET.SubElement(
            data_panel,
            "Track",
            attributeKey=spec.filename,
            autoScale="false" if spec.view_range else "true",
            clazz="org.broad.igv.track.DataSourceTrack",
            color=spec.rgb,
            height=str(track_height(spec)),
            id=spec.filename,
            name=spec.label,
            renderer="BAR_CHART",
            visible="true",
            windowFunction="mean",
            **extra,
        )
        ET.SubElement(
            track,
            "DataRange",
            baseline="0.0",
            drawBaseline="true",
            flipAxis="false",
            maximum=str(high),
            minimum=str(low),
            type="LINEAR",
        )


def _add_feature_track(
    resources: ET.Element, feature_panel: ET.Element, path: str, kind: str, resource_name: str, track_name: str
):
    """A feature file (BED, GFF3) as a resource and an expanded track in the feature panel."""
    ET.SubElement(resources, "Resource", name=resource_name, path=path, type=kind)
    ET.SubElement(
        feature_panel,
        "Track",
        attributeKey=path,
        clazz="org.broad.igv.track.FeatureTrack",
        displayMode="EXPANDED",
        id=path,
        name=track_name,
        visible="true",
    )


def _present(inputs: BrowserInputs, specs) -> list[catalog.TrackSpec]:
    return [spec for spec in specs if inputs.has(spec.filename)]


def track_height(spec: catalog.TrackSpec) -> int:
    """Pixels per track: the four probabilities and four logo letters are shorter than the rest."""
    return 36 if spec.key.startswith(("prob_", "logo_")) else 50


# --------------------------------------------------------------------------- igv.js page


def igv_js_options(inputs: BrowserInputs) -> dict:
    """The igv.createBrowser options the page uses (also handy for embedding elsewhere)."""
    tracks = [
        _wig_track(s)
        for s in _present(inputs, catalog.GATHERED_PER_BASE_TRACKS + catalog.SNV_TRACKS + catalog.EMBEDDING_TRACKS)
    ]
    if inputs.has(catalog.SEGMENTS_BED):
        # Expanded and tall enough that each segment's cluster name fits under it.
        tracks.append(
            {
                "name": catalog.SEGMENTS_LABEL,
                "type": "annotation",
                "format": "bed",
                "url": catalog.SEGMENTS_BED,
                "indexed": False,
                "displayMode": "EXPANDED",
                "height": 50,
            }
        )
    if inputs.annotation is not None:
        tracks.append(
            {
                "name": "Annotation (GFF3)",
                "type": "annotation",
                "format": "gff3",
                "url": inputs.rel(inputs.annotation),
                "indexed": False,
                "displayMode": "EXPANDED",
            }
        )
    return {
        "reference": _js_reference(inputs),
        "locus": inputs.locus or default_locus(_fai(inputs.fasta)),
        "tracks": tracks,
        "loadDefaultGenomes": False,  # no request to igv.org for its genome list
        "showCursorTrackingGuide": True,
    }


def _js_reference(inputs: BrowserInputs) -> dict:
    """The local FASTA and its index (and bgzip index when there is one) as igv.js's reference."""
    fasta = inputs.fasta
    reference = {
        "id": inputs.genome_name,
        "name": inputs.genome_name,
        "fastaURL": inputs.rel(fasta),
        "indexURL": inputs.rel(_fai(fasta)),
    }
    if _gzi(fasta) is not None:
        reference["compressedIndexURL"] = inputs.rel(_gzi(fasta))
    return reference


def _wig_track(spec: catalog.TrackSpec) -> dict:
    """igv.js options of one bigWig track: fixed range when the spec has one, else autoscaled."""
    track = {
        "name": spec.label,
        "type": "wig",
        "format": "bigwig",
        "url": spec.filename,
        "color": spec.hex_color,
        "height": track_height(spec),
    }
    if spec.view_range:
        track.update(autoscale=False, min=spec.view_range[0], max=spec.view_range[1])
    else:
        track.update(autoscale=True)
    if spec.autoscale_group:
        track["autoscaleGroup"] = spec.autoscale_group
    return track


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dnafm tracks · {title}</title>
<!-- igv.js {version} (npm package "igv"), copied next to this page so it works offline -->
<script src="{dist}"></script>
<style>
  body {{ font-family: sans-serif; margin: 1em; }}
  #status {{ font-size: 0.9em; color: #555; margin: 0.3em 0 0.8em; }}
  #status[data-state="error"] {{ color: #b00; }}
  #notes {{ font-size: 0.9em; max-width: 80em; }}
  #legend table {{ border-collapse: collapse; font-size: 0.9em; }}
  #legend td, #legend th {{ padding: 0.15em 0.8em 0.15em 0; text-align: left; }}
  #legend .swatch {{ display: inline-block; width: 2.2em; height: 0.9em; vertical-align: middle; }}
</style>
</head>
<body>
<h2>dnafm · {title}</h2>
<div id="status" data-state="loading">loading tracks…</div>
<div id="igv"></div>
{legend}
<script>
const options = {options};
// igv.html?locus=chr1:1000-2000 opens there (a link to a region can be shared).
const askedLocus = new URLSearchParams(window.location.search).get("locus");
if (askedLocus) options.locus = askedLocus;
// Count what each track holds over the first locus; the status line says if any track failed.
async function loadedTracks(browser) {{
  const errors = [];
  const frame = browser.referenceFrameList[0];
  const [start, end] = [Math.floor(frame.start), Math.ceil(frame.end)];
  for (const config of options.tracks) {{
    const found = browser.findTracks(t => t.name === config.name);
    if (found.length !== 1) {{ errors.push(config.name + ": not loaded"); continue; }}
    try {{
      const features = await found[0].getFeatures(frame.chr, start, end, frame.bpPerPixel);
      // A merged (overlay) track answers one feature list per member track.
      const lists = features && features.featureArrays
        ? features.featureArrays.map((list, i) => [config.tracks[i].name, list])
        : [[config.name, features]];
      for (const [name, list] of lists) {{
        if (!list || list.length === 0) errors.push(name + ": no data in " + frame.chr + ":" + start + "-" + end);
      }}
    }} catch (e) {{
      errors.push(config.name + ": " + (e && e.message ? e.message : e));
    }}
  }}
  return errors;
}}
(async () => {{
  const status = document.getElementById("status");
  const errors = [];
  window.addEventListener("error", e => errors.push(String(e.message)));
  window.addEventListener("unhandledrejection", e => errors.push(String(e.reason)));
  try {{
    const browser = await igv.createBrowser(document.getElementById("igv"), options);
    errors.push(...await loadedTracks(browser));
    // What igv.js itself shows, one entry per track (name and kind), for tests and scripts.
    status.dataset.tracks = JSON.stringify(browser.findTracks(t => options.tracks.some(c => c.name === t.name))
      .map(t => ({{name: t.name, type: t.type}})));
    document.querySelectorAll(".igv-ui-alert-dialog-container, .igv-ui-alert").forEach(alert => {{
      if (alert.offsetParent !== null && alert.textContent.trim()) errors.push("alert: " + alert.textContent.trim());
    }});
  }} catch (e) {{
    errors.push(e && e.message ? e.message : String(e));
  }}
  status.dataset.state = errors.length ? "error" : "ok";
  status.textContent = errors.length
    ? "error: " + errors.join("; ")
    : "ok: " + options.tracks.length + " tracks loaded (igv.js " + (igv.version ? igv.version() : "") + ")";
}})();
</script>
</body>
</html>
"""


_NOTES = """<div id="notes">
<p><b>Logo tracks</b> (A, C, G, T logo height, bits): at each base, the model's information
content (2 − entropy in bits, 0–2) shared among the letters by their probability; the four
heights sum to the information content. igv.js draws them as four bar tracks; the UCSC hub
(<code>hub/</code>) stacks them and draws letters (multiWig, <code>logo on</code>).
<b>Scales</b>: fixed for loss (0–2.77 nats; chance is ln 4 = 1.39), entropy (0–1.39 nats)
and probabilities (0–1); the four logo tracks share one scale fitted to the view (at most
2 bits); PC tracks scale to the view.
<b>Min SNV LLR</b> (nats): at each base, the lowest ln P(alt) − ln P(ref) of its three possible
SNVs, scaled to the view: deep dips are where the model says a mutation hurts most. Every
SNV's value is in <code>snv_scores.tsv.bgz</code> (<code>dnafm annotate-vcf</code>).</p>
</div>"""


def legend_html(inputs: BrowserInputs) -> str:
    """The notes on the tracks and, with segments, a table cluster → colour, share, top feature type."""
    from dnafm_lib.inference.tracks.legend import read_segment_legend

    if not inputs.has(catalog.SEGMENTS_BED):
        return _NOTES
    enrichment = inputs.out_dir / catalog.ENRICHMENT_TSV
    legend = read_segment_legend(inputs.out_dir / catalog.SEGMENTS_BED, enrichment)
    annotated = inputs.annotation is not None
    head = "<tr><th>colour</th><th>cluster</th><th>share of segmented bases</th>"
    head += "<th>most enriched feature type (observed / expected)</th></tr>" if annotated else "</tr>"
    rows = []
    for entry in legend:
        cells = [
            f'<span class="swatch" style="background:{entry.hex_color}"></span>',
            html.escape(entry.cluster),
            f"{100 * entry.share:.1f}%",
        ]
        if annotated:
            cells.append(
                f"{html.escape(entry.top_feature)} ({entry.top_obs_exp:.2f}×)" if entry.top_feature else "none above 1×"
            )
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    caption = (
        ""
        if annotated
        else "<p>No annotation was given: a GFF3 (<code>--annotation</code>) adds each cluster's most enriched feature type.</p>"
    )
    return (
        f'<section id="legend"><h3>{html.escape(catalog.SEGMENTS_LABEL)}</h3>\n<table>\n{head}\n'
        + "\n".join(rows)
        + f"\n</table>\n{caption}</section>\n{_NOTES}"
    )


def script_json(value) -> str:
    """JSON for inside an inline ``<script>``: '<', '>' and '&' as \\u escapes, so no value (a contig
    named ``<!--<script>`` or ``</script>``) can end the script or change how the HTML parser reads it."""
    text = json.dumps(value, indent=2)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_igv_html(inputs: BrowserInputs, igv_js: Path, path: Path | None = None) -> Path:
    """``igv.html`` plus a copy of igv.js's dist file beside it."""
    igv_js = Path(igv_js)
    if not igv_js.is_file():
        raise DnafmError(f"{igv_js}: igv.js dist file not found (run `dnafm tracks install-igv`)")
    path = path or inputs.out_dir / catalog.IGV_HTML
    with atomic_path(path.parent / IGV_JS_DIST) as tmp:
        shutil.copyfile(igv_js, tmp)
    options = script_json(igv_js_options(inputs))
    page = _PAGE.format(
        title=html.escape(f"{inputs.genome_name} · {inputs.model_name}"),
        version=IGV_JS_VERSION,
        dist=IGV_JS_DIST,
        options=options,
        legend=legend_html(inputs),
    )
    with atomic_open(path) as handle:
        handle.write(page)
    return path


def install_igv_js(dest: Path, version: str = IGV_JS_VERSION) -> Path:
    """``npm install igv@version`` into a scratch prefix; copy ``dist/igv.min.js`` to ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        raise DnafmError("npm not found: install Node.js/npm, or set tracks.igv_js to an igv.min.js you have")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = dest.parent / f".npm-igv-{version}"
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(prefix), f"igv@{version}"],
        capture_output=True,
        text=True,
    )
    dist = prefix / "node_modules" / "igv" / "dist" / IGV_JS_DIST
    if result.returncode != 0 or not dist.is_file():
        raise DnafmError(f"npm install igv@{version} failed: {(result.stderr or result.stdout).strip()[-500:]}")
    with atomic_path(dest) as tmp:
        shutil.copyfile(dist, tmp)
    shutil.rmtree(prefix, ignore_errors=True)
    return dest
