"""dnafm ism: in-silico mutagenesis of BED regions with masked marginals.

For every base of every region, the base is masked in its reference context (--flank-bp
each side) and LLR = log p(alt) - log p(ref) is read for the three alternative bases (nats).
Writes, into --out-dir (replaced whole when done):

  ism.tsv            chrom, pos (1-based), ref, alt, llr
  max_abs_llr.bw     max over alternatives of |LLR| per base
  llr_to_A.bw …      LLR of mutating each base to A (C, G, T); 0 where A is the reference

Bases whose reference is N are not scored (absent from the tracks).
"""

HELP = "in-silico mutagenesis of BED regions: per-base LLR bigWigs and a TSV"


def add_arguments(parser):
    from ..tasks.mutagenesis import DEFAULT_FLANK_BP

    parser.add_argument("--model", required=True, help="a checkpoint directory (or a preset, for testing)")
    parser.add_argument(
        "--fasta",
        required=True,
        help="reference FASTA (plain, gzip or bgzip; a plain-gzip one is copied to an indexed bgzip in ~/.cache/dnafm once)",
    )
    parser.add_argument("--regions", required=True, help="BED file of regions to mutate (overlaps are merged)")
    parser.add_argument("--out-dir", required=True, help="output directory")
    parser.add_argument(
        "--flank-bp",
        type=int,
        default=DEFAULT_FLANK_BP,
        help=f"context bases on each side of the masked base (default {DEFAULT_FLANK_BP})",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def run(args) -> int:
    import sys

    import torch

    from .. import load_model
    from ..atomic import atomic_dir
    from ..devices import resolve_device
    from ..errors import DnafmError
    from ..tasks.mutagenesis import ism_region, open_fasta, read_regions, write_ism_outputs

    if args.flank_bp < 0 or args.batch_size < 1:
        raise DnafmError("--flank-bp must be >= 0 and --batch-size >= 1")
    from ..indexed_fasta import ensure_indexed

    fasta = open_fasta(ensure_indexed(args.fasta))
    lengths = {name: len(record) for name, record in fasta.records.items()}
    regions = read_regions(args.regions, lengths)
    device = resolve_device(args.device)
    model = load_model(args.model).to(device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        scores = [ism_region(model, fasta, region, args.flank_bp, args.batch_size) for region in regions]
    with atomic_dir(args.out_dir) as tmp:
        write_ism_outputs(scores, lengths, tmp)
    n_bases = sum(len(s.reference) for s in scores)
    print(f"ism: {len(regions)} region(s), {n_bases} bases → {args.out_dir}", file=sys.stderr)
    return 0
