"""dnafm prepare-batch: prepare (and shard) several genomes in one job, into a staging folder.

The workflow's batch rule (`prepare.genomes_per_job` above 1) runs it on a compute node for N
genomes at once; a local step then hard-links each genome's files into results/genomes/{genome}/
and results/shards/{genome}/ (dnafm_lib.data.genome_batches). Each --genomes-json entry holds
prepare-genome's settings for one genome: genome, fasta or download_record, source, location,
accession, assembly_name, assembly_status, annotation. The staging folder appears whole or not
at all.
"""

HELP = "prepare and shard several genomes in one job (the workflow's batch of small genomes)"

ENTRY_KEYS = frozenset(
    {
        "genome",
        "fasta",
        "download_record",
        "source",
        "location",
        "accession",
        "assembly_name",
        "assembly_status",
        "annotation",
    }
)


def add_arguments(parser):
    parser.add_argument("--genomes-json", required=True, help="JSON list: one object of settings per genome")
    parser.add_argument("--out-dir", required=True, help="staging folder to write, e.g. results/genome_batches/{batch}")
    parser.add_argument(
        "--genomes-dir", required=True, help="where the genomes will be put (results/genomes), recorded in the shards"
    )
    parser.add_argument("--window-nt", type=int, help="shard each genome into windows of this many nt (else no shards)")
    parser.add_argument("--min-tail-nt", type=int, default=512, help="as dnafm shard --min-tail-nt (default 512)")


def parse_entries(text: str) -> list[dict]:
    import json

    from dnafm_lib.data.genome_batches import GenomeBatchError

    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise GenomeBatchError(f"--genomes-json: not JSON ({error})") from None
    if not isinstance(entries, list) or not entries:
        raise GenomeBatchError("--genomes-json: expected a non-empty JSON list of objects")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("genome"), str):
            raise GenomeBatchError(f"--genomes-json: entry {number} is not an object with a genome name")
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            raise GenomeBatchError(
                f"--genomes-json: entry {number} ({entry['genome']}): unknown key(s) {', '.join(sorted(unknown))}"
            )
    return entries


def run(args) -> int:
    import sys

    from dnafm_lib.data.fasta import describe_skipped
    from dnafm_lib.data.genome_batches import prepare_batch

    entries = parse_entries(args.genomes_json)
    provenances = prepare_batch(
        entries, args.out_dir, genomes_dir=args.genomes_dir, window_nt=args.window_nt, min_tail_nt=args.min_tail_nt
    )
    for provenance in provenances:
        if provenance["skipped_empty_records"]:  # the same warning as dnafm prepare-genome's
            print(
                f"dnafm prepare-batch: warning: {provenance['input_path']}: "
                f"{describe_skipped(provenance['skipped_empty_records'])}",
                file=sys.stderr,
            )
        if provenance.get("annotation_warning"):
            print(f"dnafm prepare-batch: warning: {provenance['annotation_warning']}", file=sys.stderr)
        print(f"{provenance['genome']}: {provenance['n_records']} records, {provenance['total_nt']} nt")
    print(f"{len(provenances)} genomes → {args.out_dir}")
    return 0
