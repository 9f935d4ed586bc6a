"""Attention backends: which can run here, the choice by measurement, and the fallback to SDPA.

Invariants: a flash-attn backend whose kernel cannot take the inputs (no package, CPU, float32)
is never timed and never chosen, and the model then computes exactly what SDPA computes; the
chosen backend is the fastest of those that ran.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dnafm_lib.model import encoder as model_module
from dnafm_lib.model.attention import choose_attention_backend, unavailable_reason
from dnafm_lib.model.encoder import ATTENTION_BACKENDS, build_model, preset_config

ROOT = Path(__file__).resolve().parents[2]


def test_every_backend_is_known_and_sdpa_and_eager_run_on_cpu():
    assert {"sdpa", "flash_attn", "flash_attn_4", "eager"} <= set(ATTENTION_BACKENDS)
    cpu = torch.device("cpu")
    assert unavailable_reason("sdpa", cpu, torch.float32, 136) is None
    assert unavailable_reason("eager", cpu, torch.float32, 136) is None
    assert "unknown backend" in unavailable_reason("flash_attn_5", cpu, torch.float32, 136)


@pytest.mark.parametrize("backend", ["flash_attn", "flash_attn_4"])
def test_flash_backends_are_not_candidates_on_cpu(backend):
    reason = unavailable_reason(backend, torch.device("cpu"), torch.float32, 136)
    assert reason is not None
    assert ("not installed" in reason) or ("fall back to sdpa" in reason)


def test_the_fastest_backend_that_runs_is_chosen():
    measured = []

    def fake_measure(backend):
        measured.append(backend)
        return {"sdpa": 2.0, "eager": 1.0}[backend]

    chosen, timings = choose_attention_backend(2, 4, 64, 32, "cpu", torch.float32, measure=fake_measure)
    assert chosen == "eager"
    assert sorted(measured) == ["eager", "sdpa"]  # the flash backends were not timed on the CPU
    by_name = {t.backend: t for t in timings}
    assert by_name["flash_attn_4"].seconds is None and by_name["flash_attn_4"].note
    assert by_name["sdpa"].seconds == 2.0


def test_real_measurement_on_cpu_picks_a_backend_that_ran():
    chosen, timings = choose_attention_backend(1, 2, 32, 16, "cpu", torch.float32, candidates=("sdpa", "eager"))
    assert chosen in ("sdpa", "eager")
    assert all(t.seconds is not None and t.seconds > 0 for t in timings)


def test_with_nothing_runnable_sdpa_is_the_fallback_choice():
    chosen, timings = choose_attention_backend(1, 2, 32, 16, "cpu", torch.float32, candidates=("flash_attn_4",))
    assert chosen == "sdpa" and timings[0].seconds is None


@pytest.mark.parametrize("backend", ["flash_attn", "flash_attn_4"])
def test_flash_backend_on_cpu_falls_back_to_sdpa_with_identical_logits(backend, monkeypatch):
    # Pretend the package imported: the CPU/float32 inputs must still route to SDPA, not crash.
    monkeypatch.setattr(model_module, "HAVE_FLASH_ATTN", True)
    monkeypatch.setattr(model_module, "HAVE_FLASH_ATTN_4", True)
    torch.manual_seed(0)
    config = preset_config("tiny", num_hidden_layers=2)
    reference = build_model(config).eval()
    ids = torch.randint(5, 9, (2, 40))
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0
    with torch.no_grad():
        expected = reference(ids, mask).logits
        reference.config.attn_backend = backend
        got = reference(ids, mask).logits
    torch.testing.assert_close(got, expected)


def test_set_attention_backend_names_the_missing_package():
    model = build_model(preset_config("tiny", num_hidden_layers=1))
    if model_module.HAVE_FLASH_ATTN_4:
        pytest.skip("flash-attn-4 is installed here")
    with pytest.raises(RuntimeError, match="flash-attn-4"):
        model.set_attention_backend("flash_attn_4")


@pytest.mark.slow
def test_gpu_7b_benchmark_smoke_runs_every_section_on_cpu(tmp_path):
    out = tmp_path / "report.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_7b.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    text = out.with_suffix(".md").read_text()
    for heading in (
        "Attention at 1 × 4 × 128 × 32",
        "| sdpa |",
        "| flash_attn_4 |",
        "Full depth",
        "hg38 projection",
        "Scorer, whole",
        "Pretraining step",
    ):
        assert heading in text, heading
    import json

    report = json.loads(out.read_text())
    assert report["full7b"]["tokens_per_s"] > 0 and report["full7b"]["hg38_gpu_hours"] > 0
    assert "scorer_over_bare_forward" in report["scorer"]
    assert all("error" not in r for stack in report["pretrain"].values() for r in stack["results"])
