"""The ``dnafm`` command line: one subcommand per module in ``dnafm_lib.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import DnafmError

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
    "shard": "shard",
    "index-shards": "index_shards",
    "fit": "fit",
    "test": "test",
    "ism": "ism",
    "score-variants": "score_variants",
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(f"dnafm_lib.commands.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        if name == selected:
            module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    selected = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(selected if selected in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except DnafmError as exc:
        print(f"dnafm {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
