"""The docs a newcomer reads hold: config/README.md documents exactly the schema's keys, and every
relative link in README.md, config/README.md, benchmarks/RESULTS.md and docs/*.md reaches a file
(and heading) that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
REFERENCE = ROOT / "config/README.md"
PAGES = [ROOT / "README.md", REFERENCE, ROOT / "benchmarks/RESULTS.md", *sorted((ROOT / "docs").glob("*.md"))]

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
ROW_KEY = re.compile(r"^\|\s*`([^`]+)`\s*\|", re.MULTILINE)


def schema_paths(node: dict, prefix: str = "") -> set[str]:
    """Every key of the schema, nested ones as dotted paths (walked here, not by the generator)."""
    paths = set()
    for name, child in node.get("properties", {}).items():
        paths.add(prefix + name)
        paths |= schema_paths(child, f"{prefix}{name}.")
    return paths


def documented_keys(text: str) -> set[str]:
    """The keys of the reference table: the first cell of each row, in backticks."""
    table = text.split("## Every key", 1)[1]
    return set(ROW_KEY.findall(table))


def reference_problems(text: str, schema: dict) -> list[str]:
    wanted, documented = schema_paths(schema), documented_keys(text)
    return [f"not documented in config/README.md: {key}" for key in sorted(wanted - documented)] + [
        f"documented but not in the schema: {key}" for key in sorted(documented - wanted)
    ]


def test_config_readme_documents_every_schema_key_and_no_other():
    problems = reference_problems(REFERENCE.read_text(), yaml.safe_load(SCHEMA.read_text()))
    assert not problems, "\n".join(problems)


def test_a_deleted_or_invented_row_is_reported():
    text = REFERENCE.read_text()
    schema = yaml.safe_load(SCHEMA.read_text())
    row = next(line for line in text.splitlines() if line.startswith("| `tracks.window_bp` |"))
    assert reference_problems(text.replace(row + "\n", ""), schema) == [
        "not documented in config/README.md: tracks.window_bp"
    ]
    invented = text.replace(row, row + "\n| `tracks.window_size` | integer | `1` | nothing |")
    assert reference_problems(invented, schema) == ["documented but not in the schema: tracks.window_size"]


def test_the_key_table_is_what_the_generator_writes_from_the_schema():
    done = subprocess.run(
        [sys.executable, "scripts/config_reference.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a page (lower case, punctuation dropped, - for spaces)."""
    anchors, seen = set(), {}
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # code blocks hold no links
    return [target for target in LINK.findall(text) if not re.match(r"^[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading_that_exist(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        if not goal.exists():
            broken.append(f"{target}: no file {goal.relative_to(ROOT) if goal.is_relative_to(ROOT) else goal}")
        elif anchor and goal.suffix == ".md" and anchor not in heading_anchors(goal.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {goal.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading (`with code`)\n")
    page.write_text("[ok](there.md#a-heading-with-code) [gone](missing.md) [bad](there.md#nope) [web](https://x.org)")
    assert relative_links(page) == ["there.md#a-heading-with-code", "missing.md", "there.md#nope"]
    assert heading_anchors((tmp_path / "there.md").read_text()) == {"a-heading-with-code"}


def test_every_make_target_the_readme_names_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    named = set(re.findall(r"(?:^|`)make ([a-z][\w-]*)", (ROOT / "README.md").read_text(), flags=re.MULTILINE))
    assert {"demo", "test"} <= named
    assert named <= targets, f"README.md names make targets the Makefile lacks: {sorted(named - targets)}"


def test_every_topic_page_is_one_click_from_the_readme():
    readme = ROOT / "README.md"
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in relative_links(readme)}
    pages = [REFERENCE, *sorted((ROOT / "docs").glob("*.md"))]
    unlinked = [str(page.relative_to(ROOT)) for page in pages if page.resolve() not in linked]
    assert not unlinked, f"README.md links none of: {', '.join(unlinked)}"
