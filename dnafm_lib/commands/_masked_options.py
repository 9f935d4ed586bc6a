"""The options and model set-up that ``dnafm ism`` and ``dnafm score-variants`` share.

Both mask one base at a time in its reference context and read LLRs from a model, so they take
the same --model, --fasta, --flank-bp, --batch-size and --device and load the model alike.
Not a subcommand itself (``cli.SUBCOMMANDS`` does not name it).
"""

from __future__ import annotations

FASTA_FORMATS = (
    "(plain, gzip, bgzip, xz, bzip2 or zstd; validated once, and one faidx cannot index as it is "
    "copied to an indexed bgzip in ~/.cache/dnafm once)"
)


def add_model_arguments(parser, fasta_what: str) -> None:
    """--model and --fasta; ``fasta_what`` opens the --fasta help (e.g. "reference FASTA")."""
    parser.add_argument("--model", required=True, help="a checkpoint directory (or a preset, for testing)")
    parser.add_argument("--fasta", required=True, help=f"{fasta_what} {FASTA_FORMATS}")


def add_scoring_arguments(parser, masked_what: str) -> None:
    """--flank-bp, --batch-size and --device; ``masked_what`` names what the flank surrounds."""
    from dnafm_lib.inference.mutagenesis import DEFAULT_FLANK_BP

    parser.add_argument(
        "--flank-bp",
        type=int,
        default=DEFAULT_FLANK_BP,
        help=f"context bases on each side of {masked_what} (default {DEFAULT_FLANK_BP})",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def check_scoring_arguments(args) -> None:
    """One error for a negative --flank-bp or a --batch-size below 1, before any file is read."""
    from dnafm_lib.core.errors import DnafmError

    if args.flank_bp < 0 or args.batch_size < 1:
        raise DnafmError("--flank-bp must be >= 0 and --batch-size >= 1")


def scoring_model(args):
    """--model on --device (``inference.masked`` runs its forward passes in bf16 autocast on CUDA)."""
    from dnafm_lib import load_model
    from dnafm_lib.core.devices import resolve_device

    device = resolve_device(args.device)  # a bad --device is reported before a large model loads
    return load_model(args.model).to(device)
