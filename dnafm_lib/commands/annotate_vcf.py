"""dnafm annotate-vcf: add the scores of all-SNV tables to a VCF by lookup (no model, no GPU).

The tables are the snv_scores.tsv.bgz files the tracks stage writes (with their .tbi). Each ALT
that is a single-base substitution gets DNAFM_LLR (ln P(alt) - ln P(ref), natural log) and
DNAFM_LLR_Z (that LLR as a z-score among the genome's SNVs of the same trinucleotide and alt),
Number=A, '.' for insertions, deletions, MNVs, symbolic alleles, '*' and positions no table
holds. Tables of different models each give their own pair of fields, suffixed with the model's
name. REF is checked against the table: a mismatch stops with one error naming the record
(--allow-ref-mismatch counts them instead and leaves them unannotated). Every other field is
copied unchanged; output ending in .gz is bgzipped and tabix-indexed.
"""

HELP = "annotate a VCF with the all-SNV tables' LLR and z-score (tabix lookup, no model)"


def add_arguments(parser):
    parser.add_argument("--vcf", required=True, help="input VCF (plain or bgzip), any number of samples")
    parser.add_argument(
        "--table",
        required=True,
        action="append",
        help="an snv_scores.tsv.bgz with its .tbi (repeat for more genomes or models)",
    )
    parser.add_argument("--out", required=True, help="output VCF; bgzipped and tabix-indexed when it ends in .gz")
    parser.add_argument(
        "--allow-ref-mismatch",
        action="store_true",
        help="count records whose REF differs from the table and leave them unannotated, instead of stopping",
    )


def run(args) -> int:
    import logging
    import sys

    from dnafm_lib.inference.vcf_annotation import annotate_vcf, describe

    logging.basicConfig(level=logging.WARNING, format="annotate-vcf: %(message)s")
    counts = annotate_vcf(args.vcf, args.table, args.out, allow_ref_mismatch=args.allow_ref_mismatch)
    print(f"annotate-vcf: {describe(counts)} → {args.out}", file=sys.stderr)
    return 0
