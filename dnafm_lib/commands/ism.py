"""dnafm ism: in-silico mutagenesis of BED regions with masked marginals.

For every base of every region, the base is masked in its reference context (--flank-bp
each side) and LLR = log p(alt) - log p(ref) is read for the three alternative bases (nats).
Writes, into --out-dir (replaced whole when done; refused, before any work, when it holds
anything but an earlier `dnafm ism` output, or the inputs):

  ism.tsv            chrom, pos (1-based), ref, alt, llr
  max_abs_llr.bw     max over alternatives of |LLR| per base
  llr_to_A.bw …      LLR of mutating each base to A (C, G, T); 0 where A is the reference

Bases whose reference is N are not scored (absent from the tracks).
"""

HELP = "in-silico mutagenesis of BED regions: per-base LLR bigWigs and a TSV"


def add_arguments(parser):
    from dnafm_lib.commands._masked_options import add_model_arguments, add_scoring_arguments

    add_model_arguments(parser, "reference FASTA")
    parser.add_argument("--regions", required=True, help="BED file of regions to mutate (overlaps are merged)")
    parser.add_argument(
        "--out-dir",
        required=True,
        help="output directory: absent, empty or an earlier ism output (marked by .dnafm-output.json)",
    )
    add_scoring_arguments(parser, "the masked base")


def run(args) -> int:
    import sys

    from dnafm_lib.commands._masked_options import check_scoring_arguments, scoring_model
    from dnafm_lib.core.atomic import atomic_dir
    from dnafm_lib.core.output_dir import check_output_dir
    from dnafm_lib.data.indexed_fasta import ensure_indexed, open_fasta
    from dnafm_lib.inference.mutagenesis import ism_region, read_regions, write_ism_outputs

    check_scoring_arguments(args)
    inputs = (args.fasta, args.regions, args.model)
    check_output_dir(args.out_dir, "ism", inputs=inputs)  # before hours of scoring, not after
    fasta = open_fasta(ensure_indexed(args.fasta))
    lengths = {name: len(record) for name, record in fasta.records.items()}
    regions = read_regions(args.regions, lengths)
    model = scoring_model(args)
    scores = [ism_region(model, fasta, region, args.flank_bp, args.batch_size) for region in regions]
    with atomic_dir(args.out_dir, kind="ism", inputs=inputs) as tmp:
        write_ism_outputs(scores, lengths, tmp)
    n_bases = sum(len(s.reference) for s in scores)
    print(f"ism: {len(regions)} region(s), {n_bases} bases → {args.out_dir}", file=sys.stderr)
    return 0
