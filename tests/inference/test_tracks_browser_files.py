"""Browser files cannot be steered out of their folder or out of their syntax (issue 21 item 5):
names that become paths are checked (one error, nothing written), and every value written into
igv.html's inline script and into igv_session.xml is escaped for its context. Read from the files."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from dnafm_lib.cli import main
from dnafm_lib.core.output_dir import claim_output_dir
from dnafm_lib.data.indexed_fasta import ensure_indexed
from dnafm_lib.inference.tracks import catalog

HOSTILE_CONTIGS = ["<!--<script>", "</script><script>alert(1)</script>", "a&b\"'"]


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def site(tmp_path):
    """A tracks folder (as a gather leaves it), a FASTA with hostile contig names, an igv.js file."""
    out = tmp_path / "site" / "tracks"
    claim_output_dir(out, "tracks")
    fasta = tmp_path / "site" / "genome.fa"
    fasta.write_text("".join(f">{name}\nACGTACGTAC\n" for name in HOSTILE_CONTIGS))
    ensure_indexed(fasta)  # its .fai, as the workflow's genome folder has
    igv_js = tmp_path / "igv.min.js"
    igv_js.write_text("window.igv = {};\n")
    return out, fasta, igv_js


def browser(site, *extra):
    out, fasta, igv_js = site
    argv = ["tracks", "browser", "--out-dir", str(out), "--fasta", str(fasta), "--igv-js", str(igv_js)]
    return main([*argv, "--model-name", "tiny", *extra])


@pytest.mark.parametrize(
    ("flags", "what"),
    [
        (["--genome", "g", "--assembly", "../../../X"], "hub assembly"),
        (["--genome", "g", "--assembly", "hg38/../.."], "hub assembly"),
        (["--genome", "a/b"], "genome name"),  # the assembly's default
        (["--genome", "g", "--assembly", "hg38\ntrackDb /etc/passwd"], "hub assembly"),
        (["--genome", "g", "--hub-email", "me@x.org\nhub evil"], "hub email"),
    ],
)
def test_a_name_that_would_leave_the_hub_folder_is_one_error_and_writes_nothing(site, tmp_path, capsys, flags, what):
    before = listing(tmp_path)
    assert browser(site, *flags) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dnafm tracks: error: {what} "), lines
    assert listing(tmp_path) == before  # no trackDb.txt outside, no igv.html, no hub/


def test_igv_html_keeps_hostile_contig_names_inside_its_script(site, capsys):
    out, _, _ = site
    assert browser(site, "--genome", "g") == 0
    page = (out / catalog.IGV_HTML).read_text()
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    inline = [s for s in scripts if "const options = " in s]
    assert len(inline) == 1, "the page's own script must be one element, ended by its own </script>"
    literal = re.search(r"const options = (\{.*?\n\});\n", inline[0], flags=re.S).group(1)
    assert not set("<>&") & set(literal)  # \u003c, \u003e, \u0026: nothing the HTML parser reads
    assert "</script>" in page.split("const options = ", 1)[1]  # the page's own end of script is kept
    options = json.loads(literal)
    assert options["locus"] == f"{HOSTILE_CONTIGS[0]}:1-10"  # the JSON still decodes to the name


def test_igv_session_xml_holds_hostile_names_escaped(site):
    out, _, _ = site
    assert browser(site, "--genome", "g") == 0
    session = ET.parse(out / catalog.IGV_SESSION_XML).getroot()
    assert session.get("locus") == f"{HOSTILE_CONTIGS[0]}:1-10"
    assert "<!--<script>" not in (out / catalog.IGV_SESSION_XML).read_text()


def test_valid_names_make_the_hub_inside_its_folder(site):
    out, _, _ = site
    assert browser(site, "--genome", "g", "--assembly", "GCF_000001405.40", "--hub-email", "me@x.org") == 0
    assert (out / "hub" / "GCF_000001405.40" / "trackDb.txt").is_file()
    assert "genome GCF_000001405.40\n" in (out / "hub" / "genomes.txt").read_text()


def test_one_shot_tracks_check_the_browser_names_before_scoring(tmp_path, capsys):
    fasta = tmp_path / "my genome.fa"
    fasta.write_text(">chr1\nACGTACGTAC\n")
    igv_js = tmp_path / "igv.min.js"
    igv_js.write_text("window.igv = {};\n")
    argv = ["tracks", "--fasta", str(fasta), "--model", "tiny", "--out-dir", str(tmp_path / "out")]
    assert main([*argv, "--igv-js", str(igv_js)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnafm tracks: error: genome name 'my genome': not a valid name")
    assert not (tmp_path / "out").exists()
