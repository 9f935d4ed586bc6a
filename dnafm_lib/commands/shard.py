"""dnafm shard: one genome's FASTA → fixed-width token windows (tokens.npy, softmask.npy, index.npy, metadata.json).

Windows are non-overlapping per contig; all-N windows are dropped and counted; a contig's last,
shorter window is kept when it has at least --min-tail-nt nucleotides. Zero-length records (a
header with no sequence) are skipped with a warning, as prepare-genome skips them. The output
directory appears whole or not at all.
"""

HELP = "tokenize one genome's FASTA into fixed-width training windows"


def add_arguments(parser):
    # one add_argument per flag, inline on purpose: each has its own type, default and help
    parser.add_argument("--fasta", required=True, help="genome FASTA (plain, gzip, bgzip, xz, bzip2 or zstd)")
    parser.add_argument("--genome", required=True, help="genome id recorded in the index and metadata")
    parser.add_argument("--out-dir", required=True, help="shard directory to write (absent, empty or earlier shards)")
    parser.add_argument(
        "--window-nt", type=int, default=3998, help="nucleotides per window (default 3998; the model adds [CLS]/[EOS])"
    )
    parser.add_argument(
        "--min-tail-nt",
        type=int,
        default=512,
        help="keep a contig's last, shorter window if it has at least this many nucleotides (default 512)",
    )


def run(args) -> int:
    import sys

    from dnafm_lib.data.fasta import describe_skipped
    from dnafm_lib.data.shards import write_genome_shards

    metadata = write_genome_shards(
        args.fasta, args.out_dir, args.genome, window_nt=args.window_nt, min_tail_nt=args.min_tail_nt
    )
    print(
        f"{args.genome}: {metadata['n_windows']} windows ({metadata['n_nt']} nt) from {len(metadata['contigs'])} contigs; "
        f"dropped {metadata['dropped_all_n_windows']} all-N windows and {metadata['dropped_tail_windows']} short tails "
        f"({metadata['dropped_tail_nt']} nt)"
    )
    if metadata["skipped_empty_records"]:
        print(
            f"dnafm shard: warning: {args.fasta}: {describe_skipped(metadata['skipped_empty_records'])}",
            file=sys.stderr,
        )
    return 0
