"""dnafm prepare-genome: validate a genome FASTA and write its directory.

Writes genome.fa.gz (bgzip) with .fai and .gzi, chrom.sizes, provenance.json and, when given,
annotation.gff3 into --out-dir (e.g. results/genomes/{genome}). The input is a local FASTA
(--fasta; plain, gzip, bgzip, xz, bzip2 or zstd) or the download step's record (--download-record
results/downloads/{genome}/download.json, whose FASTA and NCBI details it uses). A malformed
FASTA stops with one error naming the file, record and offset, and writes nothing. Zero-length
records (a header with no sequence) are skipped with a warning: chrom.sizes and the .fai list
the same records.
"""

HELP = "validate a genome FASTA and write bgzip FASTA + .fai/.gzi, chrom.sizes, provenance.json"


def add_arguments(parser):
    parser.add_argument("--genome", required=True, help="genome id (the sheet's genome column)")
    parser.add_argument(
        "--out-dir", required=True, help="directory to write (absent, empty or an earlier prepare-genome output)"
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--fasta", help="local FASTA (plain, gzip, bgzip, xz, bzip2 or zstd)")
    given.add_argument("--download-record", help="download.json written by `dnafm download` (ncbi and url rows)")
    parser.add_argument("--source", choices=["ncbi", "url", "file"], default="file", help="the sheet's source column")
    parser.add_argument("--location", help="the sheet's location (path or URL), recorded in provenance.json")
    parser.add_argument("--accession", help="assembly accession, recorded in provenance.json")
    parser.add_argument("--assembly-name", help="assembly name, recorded in provenance.json")
    parser.add_argument(
        "--assembly-status", help="NCBI assembly status (current, previous, …), recorded in provenance.json"
    )
    parser.add_argument(
        "--annotation",
        help="GFF3 annotation (plain, gzip, xz, bzip2 or zstd) to copy as annotation.gff3; its seqids must name records of the FASTA (a warning counts those that do not)",
    )


def run(args) -> int:
    import sys

    from dnafm_lib.data.fasta import describe_skipped
    from dnafm_lib.data.genomes import prepare_genome

    # keyword arguments spelled out on purpose (same shape as other calls, different parameters)
    provenance = prepare_genome(
        args.genome,
        args.out_dir,
        fasta=args.fasta,
        download_record=args.download_record,
        source=args.source,
        location=args.location,
        accession=args.accession,
        assembly_name=args.assembly_name,
        assembly_status=args.assembly_status,
        annotation=args.annotation,
    )
    if provenance["skipped_empty_records"]:
        print(
            f"dnafm prepare-genome: warning: {provenance['input_path']}: "
            f"{describe_skipped(provenance['skipped_empty_records'])}",
            file=sys.stderr,
        )
    if provenance["annotation_warning"]:
        print(f"dnafm prepare-genome: warning: {provenance['annotation_warning']}", file=sys.stderr)
    print(f"{args.genome}: {provenance['n_records']} records, {provenance['total_nt']} nt → {args.out_dir}")
    return 0
