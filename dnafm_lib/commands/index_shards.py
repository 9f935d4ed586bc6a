"""dnafm index-shards: write a split's manifest listing its genomes' shard directories.

The manifest (vocab, window, counts, per-file checksums, shard directories relative to it) is
what `dnafm_lib.data.shards.open_split` and pretraining read.
"""

HELP = "write a split's shard manifest (counts, checksums, genome shard directories)"


def add_arguments(parser):
    parser.add_argument(
        "shard_dirs", nargs="*", metavar="SHARD_DIR", help="one shard directory per genome, in split order"
    )
    parser.add_argument("--split", required=True, help="split name (train, validation, test)")
    parser.add_argument("--out", required=True, help="manifest path, e.g. results/shards/train.manifest.json")
    parser.add_argument("--window-nt", type=int, help="window size; required only when the split has no genomes")
    parser.add_argument("--verify", action="store_true", help="recompute every array's sha256 before listing it")


def run(args) -> int:
    from dnafm_lib.data.shards import write_manifest

    manifest = write_manifest(args.split, args.shard_dirs, args.out, window_nt=args.window_nt, verify=args.verify)
    print(
        f"{args.split}: {manifest['n_genomes']} genomes, {manifest['n_windows']} windows of {manifest['window_nt']} nt"
    )
    return 0
