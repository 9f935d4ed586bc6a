"""Training metrics: CSV + TensorBoard rows, a progress bar, MFU, and a PNG of the curves.

Only rank 0 writes. ``metrics.csv`` has one row per logged step (``step, loss_nats, lr,
grad_norm, tokens_per_s, mfu, val_loss_nats, epoch, elapsed_s``; validation rows fill
``val_loss_nats``). On resume, rows after the checkpoint's step are dropped so the file reads
like one uninterrupted run; TensorBoard events after it are purged the same way.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path
from typing import Any

from dnafm_lib.core.atomic import atomic_open, atomic_path

CSV_NAME = "metrics.csv"
PLOT_NAME = "curves.png"
TENSORBOARD_DIR = "tensorboard"
COLUMNS = ("step", "loss_nats", "lr", "grad_norm", "tokens_per_s", "mfu", "val_loss_nats", "epoch", "elapsed_s")

# Dense bf16 tensor-core peak per device (FLOP/s), by a substring of the CUDA device name.
PEAK_BF16_FLOPS = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
)


def peak_flops_per_device(device: Any, override: float = 0.0) -> float | None:
    """The device's dense bf16 peak, ``override`` when given, None when unknown (CPU)."""
    if override:
        return override
    if getattr(device, "type", str(device)) != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS:
        if key in name:
            return flops
    return None


def model_flops_utilization(
    flops_per_token: float, tokens_per_s: float, peak_flops: float | None, devices: int
) -> float | None:
    """MFU = achieved model FLOP/s over the peak of all devices."""
    if not peak_flops:
        return None
    return flops_per_token * tokens_per_s / (peak_flops * devices)


class MetricsLogger:
    def __init__(
        self, run_dir: str | os.PathLike, *, enabled: bool, resume_step: int, total_steps: int, progress_bar: bool
    ):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / CSV_NAME
        self._writer = None
        self._bar = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._truncate_csv(resume_step)
        self._csv_handle = open(self.csv_path, "a", newline="")
        self._csv = csv.DictWriter(self._csv_handle, fieldnames=COLUMNS)
        if self._csv_handle.tell() == 0:
            self._csv.writeheader()
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR), purge_step=resume_step + 1)
        if progress_bar:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps,
                initial=resume_step,
                desc="pretrain",
                unit="step",
                dynamic_ncols=True,
                mininterval=1.0,
            )

    def _truncate_csv(self, resume_step: int) -> None:
        """Keep rows up to ``resume_step`` (those of the checkpoint being resumed)."""
        if not self.csv_path.exists():
            return
        with open(self.csv_path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
        with atomic_open(self.csv_path, newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def log(self, step: int, values: dict[str, float | None]) -> None:
        if not self.enabled:
            return
        row = {key: "" for key in COLUMNS}
        row["step"] = step
        for key, value in values.items():
            if value is None:
                continue
            row[key] = (
                repr(float(value)) if isinstance(value, float) else value
            )  # full precision: resume checks compare exactly
            if key not in ("step", "epoch", "elapsed_s"):
                self._writer.add_scalar(
                    f"train/{key}" if key != "val_loss_nats" else "validation/loss_nats", value, step
                )
        self._csv.writerow(row)
        self._csv_handle.flush()
        if self._bar is not None and "loss_nats" in values and values["loss_nats"] is not None:
            self._bar.set_postfix(loss=f"{values['loss_nats']:.4f}", lr=f"{values.get('lr') or 0:.2e}", refresh=False)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(steps)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def progress_line(self, text: str) -> None:
        """A progress line to stderr (the job's log), above the bar when there is one."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        self._writer.flush()
        self._writer.close()
        self._csv_handle.close()


def read_metrics(csv_path: str | os.PathLike) -> list[dict[str, float]]:
    """metrics.csv as a list of dicts, empty cells as NaN."""
    with open(csv_path, newline="") as handle:
        return [{k: (float(v) if v != "" else math.nan) for k, v in row.items()} for row in csv.DictReader(handle)]


def plot_curves(csv_path: str | os.PathLike, png_path: str | os.PathLike, title: str = "") -> Path:
    """Loss (train and validation), learning rate, gradient norm and throughput against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(csv_path)

    def series(key: str) -> tuple[list[float], list[float]]:
        points = [(r["step"], r[key]) for r in rows if not math.isnan(r[key])]
        return [p[0] for p in points], [p[1] for p in points]

    figure, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    ax = axes[0][0]
    ax.plot(*series("loss_nats"), label="train", linewidth=1)
    ax.plot(*series("val_loss_nats"), "o-", label="validation")
    ax.set(xlabel="step", ylabel="MLM loss (nats)", title="loss")
    ax.legend()
    for ax, key, label in (
        (axes[0][1], "lr", "learning rate"),
        (axes[1][0], "grad_norm", "gradient norm"),
        (axes[1][1], "tokens_per_s", "tokens/s"),
    ):
        ax.plot(*series(key), linewidth=1)
        ax.set(xlabel="step", ylabel=label, title=label)
    if title:
        figure.suptitle(title)
    with atomic_path(png_path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return Path(png_path)
