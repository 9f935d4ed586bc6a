"""dnafm test: score a fine-tuned checkpoint on the val and test splits of a labelled table.

  dnafm test --ckpt-path results/finetune/run1/best --data.path windows.tsv \\
      --trainer.out_dir results/finetune/run1/test

The checkpoint (written by `dnafm fit`) names its task and options; --model, if given, must
agree. --config takes the same YAML as `dnafm fit`. Writes metrics.json and predictions.tsv
(the test split) under --trainer.out_dir.
"""

import argparse

HELP = "evaluate a fine-tuned checkpoint: metrics.json and predictions.tsv"


def add_arguments(parser):
    from dnafm_lib.finetune.options import add_task_options

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--ckpt-path",
        "--ckpt_path",
        dest="ckpt_path",
        required=True,
        help="a checkpoint directory written by `dnafm fit` (its best/)",
    )
    add_task_options(parser)


def run(args) -> int:
    import json

    from dnafm_lib.core.devices import resolve_device
    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.finetune import load_task
    from dnafm_lib.finetune.data import load_splits
    from dnafm_lib.finetune.options import collect_options, resolve_task, section_settings
    from dnafm_lib.finetune.trainer import test

    options = collect_options(args)
    model = load_task(args.ckpt_path)
    named = resolve_task(options, required=False)
    if named is not None and named.task_name != model.task_name:
        raise DnafmError(f"--model {named.task_name} does not match the checkpoint's task {model.task_name}")
    data_config = section_settings(options, "data")
    trainer_config = section_settings(options, "trainer")
    splits = load_splits(data_config, model.label_kind, model.config)
    model.to(resolve_device(trainer_config.device, "trainer.device"))
    results = test(
        model,
        splits,
        data_config.batch_size,
        data_config.max_length or None,
        trainer_config.out_dir,
        trainer_config.precision,
        trainer_config.progress_bar,
        run_config={"ckpt_path": args.ckpt_path, "data": options["data"]},
    )
    print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))
    return 0
