"""dnafm model-info: a preset's or checkpoint's configuration and parameter count."""

HELP = "print a model's configuration and parameter count"


def add_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="tiny, 300m or 7b")
    source.add_argument("--checkpoint", help="a checkpoint directory in the AIDO.DNA layout")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    import json

    from dnafm_lib.model.encoder import count_parameters, preset_config
    from dnafm_lib.model.model_dir import CONFIG_NAME, CheckpointError, config_from_json

    if args.preset:
        config = preset_config(args.preset)
    else:
        path = f"{args.checkpoint}/{CONFIG_NAME}"
        try:
            with open(path) as handle:
                config = config_from_json(json.load(handle), path)
        except FileNotFoundError:
            raise CheckpointError(f"{args.checkpoint}: no {CONFIG_NAME}") from None
    info = {**config.architecture_dict(), "head_dim": config.head_dim, "num_parameters": count_parameters(config)}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:28s} {value}")
        print(f"{'parameters (billions)':28s} {info['num_parameters'] / 1e9:.3f}")
    return 0
