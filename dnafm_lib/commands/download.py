"""dnafm download: genome assemblies from NCBI (FTP tree or Datasets zip), or a FASTA from a URL.

Three forms. (1) `dnafm download ACCESSION... --out-dir DIR` writes one folder DIR/ACCESSION/
per assembly. (2) `dnafm download --url URL --out FILE` fetches a plain or gzipped FASTA from
an http(s) URL. (3) `dnafm download --genomes-tsv results/splits/genomes.tsv --genome ID
--out-dir DIR` downloads one ncbi or url row of the splits table, as the workflow's
download_genome rule does. NCBI downloads are verified against md5checksums.txt (or the zip's
checksums), resumed after a broken connection, retried on 5xx, and paced to NCBI's rate limit
(3 requests/s, 10 with the NCBI_API_KEY environment variable). Each assembly folder holds
genomic.fna.gz and download.json (accession, assembly_name, assembly_status, fasta_path, url,
md5, retrieved_at, source).
"""

HELP = "download genome assemblies from NCBI (verified, resumable) or a FASTA from a URL"


def add_arguments(parser):
    parser.add_argument("accessions", nargs="*", metavar="ACCESSION", help="assembly accessions, e.g. GCF_015227675.2")
    parser.add_argument(
        "--out-dir", help="output folder (one sub-folder per ACCESSION; the genome's folder with --genomes-tsv)"
    )
    parser.add_argument(
        "--source",
        choices=("ftp", "datasets"),
        default="ftp",
        help="NCBI genomes FTP tree (default) or the Datasets v2 zip",
    )
    add_ncbi_options(parser, ftp_url_use="the genomes FTP tree")
    parser.add_argument("--url", help="download this http(s) URL instead of accessions (needs --out)")
    parser.add_argument("--out", help="output file for --url")
    parser.add_argument(
        "--genomes-tsv", help="a genomes.tsv from `dnafm splits`, or a genome sheet (needs --genome and --out-dir)"
    )
    parser.add_argument("--genome", help="the genome id of the --genomes-tsv row to download")


def add_ncbi_options(parser, *, ftp_url_use: str) -> None:
    """NCBI endpoints and retry options, shared with `dnafm splits`; ``ftp_url_use`` says what the FTP base is for."""
    parser.add_argument(
        "--ncbi-ftp-url", default=None, help=f"base of {ftp_url_use} (default https://ftp.ncbi.nlm.nih.gov)"
    )
    parser.add_argument(
        "--ncbi-api-url",
        default=None,
        help="base of the Datasets v2 API (default https://api.ncbi.nlm.nih.gov/datasets/v2)",
    )
    # one add_argument per flag, inline on purpose: each has its own type, default and help
    parser.add_argument(
        "--attempts",
        type=int,
        default=6,
        help="tries per request before giving up (5xx, 429 and broken connections are retried; default 6)",
    )
    parser.add_argument(
        "--backoff-s",
        type=float,
        default=1.0,
        help="first pause between tries in seconds, doubled each time up to 60 (default 1)",
    )


def ncbi_client_options(args) -> dict:
    """NcbiClient keyword arguments from the options of ``add_ncbi_options``."""
    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.data.http import RetryPolicy
    from dnafm_lib.data.ncbi import DEFAULT_API_URL, DEFAULT_FTP_URL

    if args.attempts < 1 or args.backoff_s < 0:
        raise DnafmError(
            f"--attempts must be at least 1 and --backoff-s at least 0, got {args.attempts} and {args.backoff_s}"
        )
    return {
        "ftp_url": args.ncbi_ftp_url or DEFAULT_FTP_URL,
        "api_url": args.ncbi_api_url or DEFAULT_API_URL,
        "retry": RetryPolicy(max_attempts=args.attempts, backoff_initial_s=args.backoff_s),
    }


def run(args) -> int:
    from pathlib import Path

    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.data.http import HttpClient
    from dnafm_lib.data.ncbi import NcbiClient, download_assembly, fetch_url

    client_options = ncbi_client_options(args)
    if args.url:
        if args.accessions or args.genomes_tsv or not args.out:
            raise DnafmError("--url takes exactly one --out FILE and no accessions or --genomes-tsv")
        result = fetch_url(args.url, args.out, http=HttpClient(retry=client_options["retry"]))
        print(f"{args.url} -> {args.out} (md5 {result.md5})")
        return 0
    if args.genomes_tsv:
        if args.accessions or not (args.genome and args.out_dir):
            raise DnafmError("--genomes-tsv needs --genome ID and --out-dir DIR, and no accessions")
        return _download_row(args.genomes_tsv, args.genome, Path(args.out_dir), args.source, client_options)
    if not args.accessions or not args.out_dir:
        raise DnafmError("give ACCESSION... with --out-dir DIR (or --url URL --out FILE)")
    client = NcbiClient(**client_options)
    for accession in args.accessions:
        result = download_assembly(accession, Path(args.out_dir) / accession, source=args.source, client=client)
        print(
            f"{accession} ({result.assembly_name}, {result.assembly_status}) -> {result.fasta_path} (md5 {result.md5})"
        )
    return 0


def _download_row(table_path, genome, out_dir, source, client_options) -> int:
    """Download the genome of one genomes.tsv row into out_dir/{genomic.fna.gz,download.json}."""
    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.data.genome_sheet import SHEET_COLUMNS, read_genome_sheet
    from dnafm_lib.data.http import HttpClient
    from dnafm_lib.data.ncbi import (
        AssemblyReport,
        NcbiClient,
        download_assembly,
        fetch_url,
        gzip_if_plain,
        write_download_record,
    )
    from dnafm_lib.data.splits import read_genomes_table

    with open(table_path) as handle:
        header = tuple(handle.readline().rstrip("\r\n").split("\t"))
    if header == SHEET_COLUMNS:  # a genome sheet (a cohort without the splits stage): no NCBI status yet
        sheet = read_genome_sheet(table_path).frame()
        all_rows = [{**row, "assembly_name": "", "status": ""} for row in sheet.to_dict("records")]
    else:
        all_rows = read_genomes_table(table_path)
    rows = [row for row in all_rows if row["genome"] == genome]
    if not rows:
        raise DnafmError(f"{table_path}: no genome {genome!r}")
    row = rows[0]
    if row["source"] == "ncbi":
        # build_splits already asked NCBI for the name and status: no second report request.
        known = (
            AssemblyReport(row["accession"], row["accession"], row["assembly_name"], row["status"])
            if row["assembly_name"] and row["status"]
            else None
        )
        result = download_assembly(
            row["accession"], out_dir, source=source, client=NcbiClient(**client_options), report=known
        )
    elif row["source"] == "url":
        fasta = out_dir / "genomic.fna.gz"
        result = fetch_url(row["location"], fasta, http=HttpClient(retry=client_options["retry"]))
        gzip_if_plain(fasta)  # one name and format for every downloaded genome
        write_download_record(result, out_dir / "download.json", genome=genome)
    else:
        raise DnafmError(
            f"{table_path}: genome {genome!r} has source {row['source']!r}; only ncbi and url rows are downloaded"
        )
    print(f"{genome}: {result.url} -> {result.fasta_path} (md5 {result.md5})")
    return 0
