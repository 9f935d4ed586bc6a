"""igv.html in Debian's headless Chromium, served by a local HTTP server: every track must load.

Needs `chromium` (scripts/install-system-deps.sh) and npm (igv.js is installed from the npm
registry at the pinned version). The page writes its verdict into #status once igv.js has
loaded every track and fetched data for the first locus; Chromium's --dump-dom returns it.
"""

from __future__ import annotations

import html
import http.server
import json
import re
import shutil
import subprocess
import threading
from functools import partial
from pathlib import Path

import pytest

from dnafm_lib.data.indexed_fasta import open_fasta
from dnafm_lib.inference.tracks import catalog
from dnafm_lib.inference.tracks.browser import write_browser_files
from dnafm_lib.inference.tracks.igv import install_igv_js
from dnafm_lib.inference.tracks.one_shot import run_genome
from tests.support.tracks import FAST, genome_with_gaps, save_tiny_model, write_fasta

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STATUS = re.compile(r'<div id="status" data-state="(\w+)"(?: data-tracks="([^"]*)")?>([^<]*)</div>')


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory and records (path, status) of every request."""

    def __init__(self, *args, requests, **kwargs):
        self.requests = requests
        super().__init__(*args, **kwargs)

    def log_request(self, code="-", size="-"):
        self.requests.append((self.path, int(code) if str(code).isdigit() else code))

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A genome, its tracks and browser files under one root served on 127.0.0.1."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/install-system-deps.sh)")
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    root = tmp_path_factory.mktemp("site")
    (root / "genome").mkdir()
    fasta = write_fasta(root / "genome" / "genome.fa", genome_with_gaps())
    open_fasta(fasta)
    model = save_tiny_model(root / "model")
    out = root / "tracks" / "tiny"
    run_genome(fasta, str(model), out, FAST, chunk_bp=1000, n_clusters=3, device="cpu")
    igv_js = install_igv_js(tmp_path_factory.mktemp("npm") / "igv.min.js")
    write_browser_files(out, fasta, "gapped", "tiny", igv_js)
    requests: list[tuple[str, int]] = []
    handler = partial(RecordingHandler, directory=str(root), requests=requests)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, out, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def chromium_dom(url: str, profile: Path) -> str:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=30000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def page_status(dom: str) -> tuple[str, str]:
    match = STATUS.search(dom)
    assert match, f"no status element in the page:\n{dom[:2000]}"
    return match.group(1), match.group(3)


def shown_tracks(dom: str) -> list[dict]:
    """The tracks igv.js itself holds (name, type), as the page reports them."""
    match = STATUS.search(dom)
    assert match and match.group(2), f"the page did not report its tracks:\n{dom[:2000]}"
    return json.loads(html.unescape(match.group(2)))


def test_every_track_of_igv_html_renders_in_headless_chromium(served, tmp_path):
    root, out, base, requests = served
    requests.clear()
    state, text = page_status(chromium_dom(f"{base}/tracks/tiny/igv.html", tmp_path / "profile"))
    assert state == "ok", text
    specs = catalog.GATHERED_PER_BASE_TRACKS + catalog.SNV_TRACKS + catalog.EMBEDDING_TRACKS
    n_tracks = len(specs) + 1  # + segments
    assert text.startswith(f"ok: {n_tracks} tracks loaded")
    fetched = {path.split("?")[0] for path, status in requests if status in (200, 206)}
    for spec in specs:
        assert f"/tracks/tiny/{spec.filename}" in fetched, spec.filename
    assert "/tracks/tiny/segments.bed" in fetched and "/genome/genome.fa.fai" in fetched
    failed = [(path, status) for path, status in requests if status not in (200, 206, 304) and path != "/favicon.ico"]
    assert not failed


def test_the_page_shows_each_base_and_each_logo_letter_as_its_own_track_with_a_legend(served, tmp_path):
    root, out, base, requests = served
    dom = chromium_dom(f"{base}/tracks/tiny/igv.html", tmp_path / "profile")
    assert page_status(dom)[0] == "ok"
    tracks = shown_tracks(dom)
    names = [t["name"] for t in tracks]
    assert len(names) == len(set(names))
    for spec in catalog.GATHERED_PER_BASE_TRACKS:
        assert {"name": spec.label, "type": "wig"} in tracks, spec.label  # a track of its own, not an overlay
    assert all(t["type"] != "merged" for t in tracks)
    legend = dom[dom.index('<section id="legend">') :]
    for line in (out / catalog.SEGMENTS_BED).read_text().splitlines():
        fields = line.split("\t")
        assert f"<td>{fields[3]}</td>" in legend
        assert "background:#{:02x}{:02x}{:02x}".format(*map(int, fields[8].split(","))) in legend


def test_the_page_reports_a_track_that_fails_to_load(served, tmp_path):
    root, out, base, requests = served
    broken = root / "tracks" / "broken"
    shutil.copytree(out, broken)
    (broken / "entropy.bw").write_bytes(b"this is not a bigWig")
    state, text = page_status(chromium_dom(f"{base}/tracks/broken/igv.html", tmp_path / "profile"))
    assert state == "error" and "Entropy" in text, text


def test_a_hostile_fasta_path_does_not_break_out_of_the_page_script(served, tmp_path):
    # The reference URL is written into the inline <script>: a folder named "<!--<script>" there
    # would, unescaped, make the HTML parser swallow the script's end and the page never runs.
    root, out, base, requests = served
    hostile = root / "<!--<script>"
    hostile.mkdir()
    for path in (root / "genome").iterdir():
        shutil.copy(path, hostile / path.name)
    site = root / "tracks" / "hostile"
    shutil.copytree(out, site)
    write_browser_files(site, hostile / "genome.fa", "gapped", "tiny", out / "igv.min.js")
    assert "<!--<script>" not in (site / catalog.IGV_HTML).read_text()
    state, text = page_status(chromium_dom(f"{base}/tracks/hostile/igv.html", tmp_path / "profile"))
    assert state == "ok", text
    fetched = {path.split("?")[0] for path, status in requests if status in (200, 206)}
    assert any("script" in path and path.endswith("/genome.fa.fai") for path in fetched), fetched
