import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_model_benchmark_runs_on_cpu_and_prints_its_table():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_model.py"),
            "--device",
            "cpu",
            "--no-compile",
            "--seq-len",
            "128",
            "--iters",
            "1",
            "--warmup",
            "0",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    table = [line for line in out.splitlines() if line.startswith("| sdpa") or line.startswith("| eager")]
    assert len(table) == 2
    assert all("tok/s" in line for line in table)
