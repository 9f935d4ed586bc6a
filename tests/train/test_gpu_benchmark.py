"""benchmarks/gpu_pretrain.py runs on CPU with the tiny preset (the CI smoke test of the GPU benchmark)."""

import json
import re
import subprocess
import sys

import pytest

from tests.support.train import REPO, env


@pytest.mark.slow
def test_gpu_pretrain_benchmark_runs_on_cpu_and_prints_its_table(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/gpu_pretrain.py",
            "--device",
            "cpu",
            "--preset",
            "tiny",
            "--seq-len",
            "64",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--json",
            str(out),
        ],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| variant | tokens/s |")
    rows = {line.split("|")[1].strip(): line for line in table[1:]}
    assert set(rows) == {"eager", "eager+ac"}
    for line in rows.values():
        assert re.match(r"\| \S+ \| [\d,]+ \| [\d.]+ \|", line), line
    results = json.loads(out.read_text())["results"]
    assert all(r["tokens_per_s"] > 0 and r["loss"] > 0 for r in results)
    # Activation checkpointing recomputes, it does not change the numbers.
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-5)
