"""dnafm export: write a pretraining checkpoint as a model directory in the AIDO.DNA layout.

Reads the latest (or --step) torch.distributed.checkpoint of a run directory and writes
config.json + model.safetensors, which dnafm_lib.load_model, the tracks stage and
ModelGenerator read. The weights are saved in fp32 (the master weights) unless --dtype says otherwise.
config.json also records the context the model was pretrained with (dnafm_pretraining_context_tokens:
the training shards' window + [CLS] + [EOS]), which the tracks commands compare with their windows.
"""

HELP = "export a pretraining checkpoint to config.json + model.safetensors (AIDO.DNA layout)"


def add_arguments(parser):
    # one add_argument per flag, inline on purpose: each has its own type, default and help
    parser.add_argument("--run-dir", required=True, help="a pretraining run directory (results/pretrain/{run})")
    parser.add_argument("--out", required=True, help="the model directory to write (results/models/{run})")
    parser.add_argument("--step", type=int, help="export this step's checkpoint (default: the latest)")
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16", "float16"), default="float32", help="dtype of the written weights"
    )


def run(args) -> int:
    import json
    from pathlib import Path

    import torch

    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.model.encoder import ModelConfig, build_model
    from dnafm_lib.model.model_dir import save_model
    from dnafm_lib.model.trained_context import CONTEXT_FIELD
    from dnafm_lib.train import checkpointer as checkpointing
    from dnafm_lib.train.loop import MODEL_CONFIG_NAME

    run_dir = Path(args.run_dir)
    config_path = run_dir / MODEL_CONFIG_NAME
    if not config_path.exists():
        raise DnafmError(f"{run_dir}: not a pretraining run directory (no {MODEL_CONFIG_NAME})")
    found = dict(checkpointing.list_checkpoints(run_dir))
    if not found:
        raise DnafmError(f"{run_dir}: no checkpoints under {checkpointing.checkpoint_root(run_dir)}")
    step = args.step if args.step is not None else max(found)
    if step not in found:
        raise DnafmError(f"{run_dir}: no checkpoint of step {step}; steps saved: {', '.join(map(str, sorted(found)))}")
    try:
        model_config = ModelConfig(**json.loads(config_path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise DnafmError(f"{config_path}: not a model configuration written by dnafm pretrain ({exc})") from None
    model = build_model(model_config, device="cpu")
    checkpointing.load_model_weights(found[step], model)
    model = model.to(getattr(torch, args.dtype))
    context_tokens = _pretraining_context_tokens(run_dir)
    out = save_model(model, args.out, extra_config={CONTEXT_FIELD: context_tokens})
    print(f"exported step {step} of {run_dir} to {out} (pretrained on {context_tokens}-token inputs)")
    return 0


def _pretraining_context_tokens(run_dir) -> int:
    """[CLS] + the train shards' window + [EOS], from the run's train_config.json and its train manifest."""
    import json
    from pathlib import Path

    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.model.trained_context import FRAME_TOKENS
    from dnafm_lib.train.loop import TRAIN_CONFIG_NAME

    config_path = run_dir / TRAIN_CONFIG_NAME
    try:
        manifest_path = json.loads(config_path.read_text())["train_manifest"]
        window_nt = int(json.loads(Path(manifest_path).read_text())["window_nt"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DnafmError(
            f"{config_path}: cannot tell the pretraining context from the run's train manifest ({exc}); "
            "it goes into config.json"
        ) from None
    return window_nt + FRAME_TOKENS
