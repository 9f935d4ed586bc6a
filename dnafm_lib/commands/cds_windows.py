"""dnafm cds-windows: a labelled table of genome windows inside CDS (1) vs outside any CDS (0).

Pairs --fasta and --gff by position (one pair per genome). Windows straddling a CDS boundary
or holding an N are dropped; train/val/test splits are drawn per --block-bp block so that
neighbouring windows share a split. Writes a TSV with columns genome, chrom, start, end,
split, label, sequence — the input of `dnafm fit` and `dnafm compare-finetuning`.
"""

HELP = "build CDS vs non-CDS labelled windows from FASTA + GFF3 (the fine-tuning example)"


def add_arguments(parser):
    parser.add_argument(
        "--fasta",
        nargs="+",
        required=True,
        help="genome FASTA files (plain, gzip, bgzip, xz, bzip2 or zstd; validated once, and one faidx cannot index as it is copied to an indexed bgzip in ~/.cache/dnafm once)",
    )
    parser.add_argument("--gff", nargs="+", required=True, help="GFF3 annotations, one per --fasta, same order")
    parser.add_argument("--names", nargs="+", help="genome names (default: each FASTA's directory name)")
    parser.add_argument("--out", required=True, help="output TSV")
    parser.add_argument("--window-bp", type=int, default=100, help="window length (default 100)")
    parser.add_argument("--block-bp", type=int, default=5000, help="split blocks (default 5000)")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="blocks in validation (default 0.15)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="blocks in test (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the block split (default 0)")


def run(args) -> int:
    import sys
    from pathlib import Path

    import pandas as pd

    from dnafm_lib.core.atomic import atomic_open
    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.core.output_dir import check_output_file
    from dnafm_lib.data.gff import match_annotation
    from dnafm_lib.data.indexed_fasta import ensure_indexed, fasta_lengths, open_fasta
    from dnafm_lib.finetune.cds_windows import WindowOptions, cds_windows, summarize

    if len(args.fasta) != len(args.gff):
        raise DnafmError(
            f"{len(args.fasta)} --fasta file(s) but {len(args.gff)} --gff file(s); give one GFF3 per FASTA"
        )
    check_output_file(args.out, inputs=[*args.fasta, *args.gff])
    names = args.names or [Path(path).parent.name for path in args.fasta]
    if len(names) != len(args.fasta):
        raise DnafmError(f"{len(names)} --names for {len(args.fasta)} --fasta file(s)")
    if args.window_bp < 1 or args.block_bp < args.window_bp:
        raise DnafmError("--window-bp must be >= 1 and --block-bp >= --window-bp")
    if not (0 <= args.val_fraction and 0 <= args.test_fraction and args.val_fraction + args.test_fraction < 1):
        raise DnafmError("--val-fraction and --test-fraction must be >= 0 and sum to less than 1")
    options = WindowOptions(args.window_bp, args.block_bp, args.val_fraction, args.test_fraction, args.seed)
    frames = []
    for fasta, gff, name in zip(args.fasta, args.gff, names):
        ready = ensure_indexed(fasta)
        warning = match_annotation(gff, fasta, fasta_lengths(open_fasta(ready)))  # named by the user's path
        if warning:
            print(f"dnafm cds-windows: warning: {warning}", file=sys.stderr)
        frames.append(cds_windows(ready, gff, name, options))
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        raise DnafmError(
            "no windows: every window straddles a CDS boundary or the genomes are shorter than --window-bp"
        )
    with atomic_open(args.out) as handle:
        table.to_csv(handle, sep="\t", index=False)
    print(
        f"cds-windows: {len(table)} windows of {args.window_bp} bp ({summarize(table)}) → {args.out}", file=sys.stderr
    )
    return 0
