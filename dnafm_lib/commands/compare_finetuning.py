"""dnafm compare-finetuning: fine-tune a checkpoint and the same architecture from scratch.

Runs the same SequenceClassification fit twice on --data (a table with sequence, label and
split columns, e.g. from `dnafm cds-windows`): once from --backbone's weights, once from a
fresh initialisation of its architecture, with identical seed, data and schedule. Writes
pretrained/ and scratch/ (each as `dnafm fit` writes them) and comparison.tsv under
--out-dir, and prints both runs' test metrics.
"""

HELP = "fine-tune a pretrained checkpoint and the same architecture from scratch; print both test metrics"


def add_arguments(parser):
    parser.add_argument("--backbone", required=True, help="a checkpoint directory (or a preset)")
    parser.add_argument("--data", required=True, help="CSV/TSV/parquet with sequence, label and split columns")
    parser.add_argument("--out-dir", required=True, help="output directory")
    parser.add_argument("--n-classes", type=int, default=2, help="classes in the label column (default 2)")
    parser.add_argument("--pooling", default="mean", choices=["cls", "mean"], help="sequence pooling (default mean)")
    parser.add_argument(
        "--strategy",
        default="full",
        choices=["full", "frozen", "lora"],
        help="what trains: the whole model, the head only, or LoRA adapters (default full)",
    )
    parser.add_argument("--max-epochs", type=int, default=4, help="epochs (default 4)")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = no limit)")
    parser.add_argument("--patience", type=int, default=2, help="early-stopping patience in epochs (default 2)")
    parser.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (default 5e-4)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the head, the scratch backbone and batching")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in workflow logs)")


def run(args) -> int:
    from dnafm_lib.core.settings import Layer, Origin
    from dnafm_lib.finetune.comparison import compare_initialisations
    from dnafm_lib.finetune.data import DataConfig
    from dnafm_lib.finetune.trainer import TrainerConfig

    flags = Origin(prefix="--", dashes=True, spelled={"path": "--data", "progress_bar": "--no-progress"})
    data = DataConfig.load(Layer({"path": args.data, "batch_size": args.batch_size, "seed": args.seed}, flags))
    trainer = TrainerConfig.load(
        Layer(
            {
                "out_dir": args.out_dir,
                "max_epochs": args.max_epochs,
                "max_steps": args.max_steps,
                "patience": args.patience,
                "lr": args.lr,
                "seed": args.seed,
                "device": args.device,
                "progress_bar": not args.no_progress,
            },
            flags,
        )
    )
    model_options = {"n_classes": args.n_classes, "pooling": args.pooling, "strategy": args.strategy}
    table = compare_initialisations(args.backbone, data, trainer, model_options, args.out_dir)
    print(f"CDS vs non-CDS windows, test split ({args.backbone}):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0
