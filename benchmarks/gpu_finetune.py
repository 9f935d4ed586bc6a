"""GPU check and benchmark for fine-tuning and masked-marginal scoring (dnafm_lib.finetune).

Run on a CUDA machine:  python benchmarks/gpu_finetune.py [--out results.json]

1. `fit` end to end on the GPU (bf16 autocast) on a toy AT- vs GC-rich table: test accuracy.
2. LoRA and full fine-tuning steps of the 300m architecture: sequences/s, bf16 over fp32 (ratio,
   both measured in this run).
3. Masked-marginal LLRs (ISM / score-variants) on the GPU in bf16 against the CPU in fp32:
   the largest difference, in nats.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dnafm_lib  # noqa: E402
from dnafm_lib.finetune import SequenceClassification  # noqa: E402
from dnafm_lib.finetune.data import DataConfig, load_splits  # noqa: E402
from dnafm_lib.finetune.trainer import TrainerConfig, fit, seed_everything  # noqa: E402
from dnafm_lib.inference.masked import masked_log_probs  # noqa: E402


def toy_table(path: Path, n_rows: int = 480, length: int = 200) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_rows):
        label = i % 2
        alphabet = np.array(list("GCGCGCAT" if label else "ATATATGC"))
        block = (i // 2) % 6
        rows.append(
            {
                "sequence": "".join(rng.choice(alphabet, size=length)),
                "label": label,
                "split": "test" if block == 0 else "val" if block == 1 else "train",
            }
        )
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)


def check_fit_on_gpu(work: Path) -> dict:
    toy_table(work / "toy.tsv")
    seed_everything(0)
    model = SequenceClassification.from_config({"model.backbone": "tiny", "model.pooling": "mean"})
    data = DataConfig(path=str(work / "toy.tsv"), batch_size=32)
    splits = load_splits(data, model.label_kind, model.config)
    trainer = TrainerConfig(out_dir=str(work / "fit"), max_epochs=2, lr=1e-3, device="cuda", progress_bar=False)
    start = time.perf_counter()
    results = fit(model, splits, data.batch_size, None, trainer)
    return {
        "test_accuracy": results["test"]["accuracy"],
        "test_auroc": results["test"]["auroc"],
        "seconds": time.perf_counter() - start,
    }


def steps_per_second(strategy: str, precision: str, batch: int, length: int, steps: int) -> float:
    seed_everything(0)
    model = SequenceClassification.from_config({"model.backbone": "300m", "model.strategy": strategy}).cuda()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(batch)]
    collated = model.collate({"sequences": sequences, "labels": [0, 1] * (batch // 2)})
    collated = {k: v.cuda() for k, v in collated.items()}

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            outputs = model(collated)
        loss = model.loss(collated, outputs.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - start)
    model = optimizer = None  # freed before the next variant
    torch.cuda.empty_cache()
    return rate


def check_llr_agreement() -> dict:
    torch.manual_seed(3)
    cpu_model = dnafm_lib.load_model("tiny").eval()
    gpu_model = dnafm_lib.load_model("tiny").eval()
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.cuda()
    rng = np.random.default_rng(1)
    windows = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(50, 400)))) for _ in range(64)]
    offsets = [int(rng.integers(0, len(w))) for w in windows]
    reference = masked_log_probs(cpu_model, windows, offsets)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        on_gpu = masked_log_probs(gpu_model, windows, offsets, batch_size=16)
    llr_cpu = reference - reference[:, :1]
    llr_gpu = on_gpu - on_gpu[:, :1]
    return {
        "max_abs_llr_difference_nats": float(np.abs(llr_cpu - llr_gpu).max()),
        "llr_spread_nats": float(np.abs(llr_cpu).max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 1
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        results["fit_bf16"] = check_fit_on_gpu(Path(tmp))
    print(json.dumps(results, indent=2), flush=True)
    results["llr_gpu_bf16_vs_cpu_fp32"] = check_llr_agreement()
    print(json.dumps(results["llr_gpu_bf16_vs_cpu_fp32"]), flush=True)
    for strategy in ("full", "lora"):
        fp32 = steps_per_second(strategy, "32", batch=8, length=998, steps=args.steps)
        bf16 = steps_per_second(strategy, "bf16", batch=8, length=998, steps=args.steps)
        results[f"300m_{strategy}_sequences_per_s"] = {"fp32": fp32, "bf16": bf16, "bf16_over_fp32": bf16 / fp32}
        print(strategy, json.dumps(results[f"300m_{strategy}_sequences_per_s"]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
