"""dnafm fit: fine-tune a task model on a labelled table (CSV, TSV or parquet).

Example (the model card's syntax):

  dnafm fit --model SequenceClassification --model.backbone results/models/demo \\
      --model.n_classes 2 --data SequenceClassification --data.path windows.tsv \\
      --trainer.out_dir results/finetune/run1

Options come from --config YAML and the dotted flags below (flags win). Writes
best/ (task.json + model.safetensors), history.tsv, metrics.json and predictions.tsv
(the test split) under --trainer.out_dir.
"""

import argparse

HELP = "fine-tune a task model (classification, regression, per-base) on a labelled table"


def add_arguments(parser):
    from dnafm_lib.finetune.options import add_task_options

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_task_options(parser)


def run(args) -> int:
    import json

    from dnafm_lib.finetune.data import load_splits
    from dnafm_lib.finetune.options import collect_options, resolve_task, section_settings
    from dnafm_lib.finetune.trainer import fit, seed_everything

    options = collect_options(args)
    task_class = resolve_task(options)
    if task_class.label_kind is None:
        from dnafm_lib.core.errors import DnafmError

        raise DnafmError(f"--model {task_class.task_name}: nothing to fit (it has no labels); use `dnafm test`")
    task_config = section_settings(options, "model")
    data_config = section_settings(options, "data")
    trainer_config = section_settings(options, "trainer")
    splits = load_splits(data_config, task_class.label_kind, task_config)
    seed_everything(trainer_config.seed)  # the head (and a from-scratch backbone) start from the seed
    model = task_class(task_config)
    run_config = {
        "model_task": task_class.task_name,
        "model": options["model"],
        "data": options["data"],
        "trainer": options["trainer"],
    }
    results = fit(
        model, splits, data_config.batch_size, data_config.max_length or None, trainer_config, run_config=run_config
    )
    print(json.dumps({k: v for k, v in results.items() if k != "config"}, indent=2))
    return 0
