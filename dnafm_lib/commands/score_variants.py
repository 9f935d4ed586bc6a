"""dnafm score-variants: add the model's log-likelihood ratio of each SNV to a VCF.

Each SNV allele gets LLR = log p(alt) - log p(ref) (nats) with the variant's base masked in
its reference context, averaged over the forward and reverse-complement strands, stored in
the INFO field --info-field (Number=A; '.' for alleles that are not single-base substitutions:
insertions such as A→AC, deletions, MNVs, symbolic alleles like <DEL>, N). Every other record,
INFO field and sample column is copied unchanged. REF must match --fasta. The VCF is checked
first: a malformed line, POS 0, or an INFO/FILTER/FORMAT key the header does not declare stops
with one error naming the line, and nothing is written.
"""

HELP = "add a strand-averaged masked-marginal LLR INFO field to a VCF"


def add_arguments(parser):
    from ..tasks.mutagenesis import DEFAULT_FLANK_BP

    parser.add_argument("--model", required=True, help="a checkpoint directory (or a preset, for testing)")
    parser.add_argument(
        "--fasta",
        required=True,
        help="reference FASTA the VCF is called against (plain, gzip or bgzip; a plain-gzip one is copied to an indexed bgzip in ~/.cache/dnafm once)",
    )
    parser.add_argument("--vcf", required=True, help="input VCF (plain or bgzip)")
    parser.add_argument("--out", required=True, help="output VCF; bgzipped when it ends in .gz")
    parser.add_argument("--info-field", default="DNAFM_LLR", help="INFO key to add (default DNAFM_LLR)")
    parser.add_argument(
        "--flank-bp",
        type=int,
        default=DEFAULT_FLANK_BP,
        help=f"context bases on each side of the variant (default {DEFAULT_FLANK_BP})",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def run(args) -> int:
    import sys

    import torch

    from .. import load_model
    from ..devices import resolve_device
    from ..errors import DnafmError
    from ..indexed_fasta import ensure_indexed
    from ..tasks.mutagenesis import describe, score_vcf

    if args.flank_bp < 0 or args.batch_size < 1:
        raise DnafmError("--flank-bp must be >= 0 and --batch-size >= 1")
    from ..vcf import check_vcf

    check_vcf(args.vcf)  # a bad line is reported before a large model is loaded
    device = resolve_device(args.device)
    model = load_model(args.model).to(device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        counts = score_vcf(
            model, ensure_indexed(args.fasta), args.vcf, args.out, args.info_field, args.flank_bp, args.batch_size
        )
    print(f"score-variants: {describe(counts)} → {args.out}", file=sys.stderr)
    return 0
