"""dnafm score-variants: add the model's log-likelihood ratio of each SNV to a VCF.

Each SNV allele gets LLR = log p(alt) - log p(ref) (nats) with the variant's base masked alone
in its reference context (exact single-site scoring, one forward per variant and strand, as
`dnafm tracks --masking exact` scores; never the tracks' pass shortcut), averaged over the forward and reverse-complement strands, stored in
the INFO field --info-field (Number=A; '.' for alleles that are not single-base substitutions:
insertions such as A→AC, deletions, MNVs, symbolic alleles like <DEL>, N). Every other record,
INFO field and sample column is copied unchanged. REF must match --fasta. The VCF is checked
first: a malformed line, POS 0, or an INFO/FILTER/FORMAT key the header does not declare stops
with one error naming the line, and nothing is written.
"""

HELP = "add a strand-averaged masked-marginal LLR INFO field to a VCF (each variant's base masked alone)"


def add_arguments(parser):
    from dnafm_lib.commands._masked_options import add_model_arguments, add_scoring_arguments

    add_model_arguments(parser, "reference FASTA the VCF is called against")
    parser.add_argument("--vcf", required=True, help="input VCF (plain or bgzip)")
    parser.add_argument("--out", required=True, help="output VCF; bgzipped when it ends in .gz")
    parser.add_argument("--info-field", default="DNAFM_LLR", help="INFO key to add (default DNAFM_LLR)")
    add_scoring_arguments(parser, "the variant")


def run(args) -> int:
    import sys

    from dnafm_lib.commands._masked_options import check_scoring_arguments, scoring_model
    from dnafm_lib.core.output_dir import check_output_file
    from dnafm_lib.data.indexed_fasta import ensure_indexed
    from dnafm_lib.data.vcf import check_vcf
    from dnafm_lib.inference.mutagenesis import describe, score_vcf

    check_scoring_arguments(args)
    check_output_file(args.out, inputs=(args.vcf, args.fasta))
    check_vcf(args.vcf)  # a bad line is reported before a large model is loaded
    fasta = ensure_indexed(args.fasta)  # a bad FASTA too is reported before the model is loaded
    counts = score_vcf(scoring_model(args), fasta, args.vcf, args.out, args.info_field, args.flank_bp, args.batch_size)
    print(f"score-variants: {describe(counts)} → {args.out}", file=sys.stderr)
    return 0
