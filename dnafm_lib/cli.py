"""The ``dnafm`` command line: one subcommand per module in ``dnafm_lib.commands``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from dnafm_lib import __version__
from dnafm_lib.core.errors import DnafmError

# subcommand name → module under dnafm_lib.commands (add a line when a stage lands)
SUBCOMMANDS: dict[str, str] = {
    "model-info": "model_info",
    "tracks": "tracks",
    "download": "download",
    "splits": "splits",
    "pretrain": "pretrain",
    "launch-pretrain": "launch_pretrain",
    "export": "export",
    "prepare-genome": "prepare_genome",
    "prepare-batch": "prepare_batch",
    "shard": "shard",
    "index-shards": "index_shards",
    "fit": "fit",
    "test": "test",
    "ism": "ism",
    "score-variants": "score_variants",
    "annotate-vcf": "annotate_vcf",
    "cds-windows": "cds_windows",
    "compare-finetuning": "compare_finetuning",
    "generate": "generate",
}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of the ``selected`` subcommand only (none for ``dnafm --help``).

    Some commands' options come from dataclasses in torch-importing modules: building only the
    invoked command's options keeps every other ``dnafm`` call (each Snakemake job) fast.
    """
    parser = argparse.ArgumentParser(
        prog="dnafm",
        description="Genome mining with the DNA FM encoder: cohorts, shards, pretraining, tracks, fine-tuning.",
    )
    parser.add_argument("--version", action="version", version=f"dnafm {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error (also: DNAFM_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(f"dnafm_lib.commands.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        # also accepted after the subcommand; SUPPRESS keeps a top-level --debug from being reset
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == selected:
            module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    selected = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(selected if selected in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("DNAFM_DEBUG", "") not in ("", "0")
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the one error boundary: one line naming the culprit, no traceback
        if debug:
            traceback.print_exc()
        print(f"dnafm {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return 1


def describe_error(exc: BaseException) -> str:
    """One line for any exception: ours as written, OS errors with their path, others with their type.

    Our own errors already name the file and place; an OS error names its path (a missing
    ``--fasta``, a directory given for a file, a read-only output directory); anything else
    is a library's message, shown with its type and a pointer to ``--debug``.
    """
    if isinstance(exc, DnafmError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
        reason = exc.strerror[0].lower() + exc.strerror[1:]
        return f"{' → '.join(paths)}: {reason}" if paths else reason
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start} is not valid {exc.encoding} "
            "(a binary or wrongly encoded file?); rerun with --debug to see which read failed"
        )
    message = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {message} (rerun with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
