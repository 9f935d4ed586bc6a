"""dnafm splits: the train/validation/test genome table from the NT list or a genome sheet.

Give `--list PATH_OR_URL` (the NT multi-species list: one URL or accession per line, in split
order; pin a URL to a revision) or `--sheet TSV` (a cohort's genome sheet with columns genome,
source, accession, location, split, annotation; only its ncbi rows use the network). Split
rule: test = the last --test-genomes entries, validation = the --validation-genomes before
them, train = the rest (sheet rows with a fixed split keep it). NCBI rows are checked with
Datasets v2 reports; suppressed, retired and unknown assemblies are dropped into removed.tsv
with the reason; --replace OLD=NEW puts NEW in OLD's place and split (the rat swap:
GCF_000001895.5=GCF_015227675.2). Writes DIR/genomes.tsv (genome, accession, source, location,
split, annotation, assembly_name, status), DIR/removed.tsv and DIR/summary.json.
"""

HELP = "build the genome splits (genomes.tsv, removed.tsv, summary.json) from the NT list or a genome sheet"


def add_arguments(parser):
    from dnafm_lib.commands.download import add_ncbi_options

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--list", dest="nt_list", metavar="PATH_OR_URL", help="the NT list (file or http(s) URL)")
    source.add_argument("--sheet", metavar="TSV", help="a genome sheet TSV")
    parser.add_argument("--out-dir", required=True, help="where genomes.tsv, removed.tsv and summary.json go")
    parser.add_argument("--validation-genomes", type=int, default=50, help="validation genomes (default 50)")
    parser.add_argument("--test-genomes", type=int, default=50, help="test genomes, the list's last (default 50)")
    parser.add_argument(
        "--replace",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="put accession NEW in OLD's place and split (repeatable)",
    )
    add_ncbi_options(parser, ftp_url_use="the genomes FTP tree used for genomes.tsv locations")


def run(args) -> int:
    from dnafm_lib.commands.download import ncbi_client_options
    from dnafm_lib.data.ncbi import NcbiClient
    from dnafm_lib.data.splits import build_nt_splits, build_sheet_splits, parse_replacements, write_splits

    replacements = parse_replacements(args.replace)
    counts = {"validation_genomes": args.validation_genomes, "test_genomes": args.test_genomes}

    def client():
        return NcbiClient(**ncbi_client_options(args))

    if args.nt_list:
        result = build_nt_splits(args.nt_list, client=client(), replacements=replacements, **counts)
    else:
        result = build_sheet_splits(args.sheet, client_factory=client, replacements=replacements, **counts)
    write_splits(result, args.out_dir)
    summary = result.summary
    per_split = " / ".join(f"{summary['per_split'][s]} {s}" for s in ("train", "validation", "test"))
    print(
        f"{summary['genomes']} genomes ({per_split}); {summary['removed']} removed; "
        f"{len(summary['replacements'])} replaced -> {args.out_dir}"
    )
    return 0
