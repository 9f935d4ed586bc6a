"""dnafm pretrain: masked-LM pretraining of the DNA FM encoder on a split's shards.

Settings come from --config (a YAML/JSON file: the training keys themselves, or a cohort
config whose pretrain.train section holds them), then --config-json, then --set KEY=VALUE
and the flags, later ones winning. Runs as one process, under torchrun, or starts torchrun
itself with --nproc-per-node N (and across nodes inside `srun` on Slurm). Resumes from the
latest checkpoint in the run directory. Exit codes: 0 done, 1 error, 75 preempted by
SIGTERM/SIGUSR1 after saving a checkpoint (run the same command again to resume).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `dnafm --help` must not import torch
    from dnafm_lib.train.config import TrainConfig

HELP = "pretrain the encoder (MLM) on shards; torchrun/srun aware, resumable"


def add_arguments(parser):
    # one add_argument per flag, inline on purpose: each has its own type, default and help
    parser.add_argument("--config", help="YAML/JSON file of training settings (or a cohort config with pretrain.train)")
    parser.add_argument("--config-json", help="training settings as one JSON object (what the Snakemake rule passes)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting; VALUE is read as YAML (repeatable)",
    )
    parser.add_argument("--train-manifest", help="results/shards/train.manifest.json")
    parser.add_argument("--validation-manifest", help="results/shards/validation.manifest.json")
    parser.add_argument("--run-dir", help="checkpoints, metrics.csv, tensorboard/, curves.png go here")
    parser.add_argument("--model", help="model preset: tiny, 300m, 7b")
    parser.add_argument("--max-steps", type=int, help="optimizer steps in total (a resumed run continues to it)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train (auto: cuda if present)")
    parser.add_argument(
        "--nproc-per-node",
        type=int,
        default=1,
        help="processes per node; above 1 (or on several Slurm nodes) torchrun is started",
    )


def settings_from_args(args) -> TrainConfig:
    """Merge the file, JSON, --set and flags into one validated TrainConfig; an error names the layer."""
    import json
    from pathlib import Path

    import yaml

    from dnafm_lib.core.settings import Layer, Origin
    from dnafm_lib.train.config import TrainConfig, TrainConfigError

    layers = []
    if args.config:
        path = Path(args.config)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise TrainConfigError(f"{path}: no such config file") from None
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"{path}: not valid YAML ({exc})") from None
        prefix = ""
        if isinstance(data, dict) and isinstance(data.get("pretrain"), dict) and "train" in data["pretrain"]:
            data, prefix = data["pretrain"]["train"], "pretrain.train."
        if not isinstance(data, dict):
            raise TrainConfigError(f"{path}: expected a mapping of training settings")
        layers.append(Layer(data, Origin(str(path), prefix)))
    if args.config_json:
        try:
            data = json.loads(args.config_json)
        except json.JSONDecodeError as exc:
            raise TrainConfigError(f"--config-json: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise TrainConfigError("--config-json: expected a JSON object")
        layers.append(Layer(data, Origin("--config-json")))
    texts = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise TrainConfigError(f"--set {item!r}: expected KEY=VALUE")
        texts[key.strip()] = value
    layers.append(Layer.from_text(TrainConfig, texts, Origin(prefix="--set ")))
    flags = {
        "train_manifest": args.train_manifest,
        "validation_manifest": args.validation_manifest,
        "run_dir": args.run_dir,
        "model": args.model,
        "max_steps": args.max_steps,
        "device": args.device,
    }
    layers.append(Layer({k: v for k, v in flags.items() if v is not None}, Origin(prefix="--", dashes=True)))
    return TrainConfig.load(*layers)


def run(args) -> int:
    import os

    from dnafm_lib.train import launch

    return launch.launch(settings_from_args(args), args.nproc_per_node, os.environ)
