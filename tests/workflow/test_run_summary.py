"""The lines a run prints: one per finished job with its key number, and the tracks summary."""

from __future__ import annotations

import json

import numpy as np

from dnafm_lib.workflow.run_summary import job_line, tracks_summary


def test_a_scoring_job_reports_its_bases_and_mean_loss(tmp_path):
    chunk = tmp_path / "chunk00003.npz"
    np.savez(chunk, mlm_loss=np.array([1.0, np.nan, 2.0, 1.5], dtype=np.float32))
    line = job_line("score_chunk", [str(chunk)], {"genome": "g", "model": "aido", "chunk": "chunk00003"})
    assert line == "scored g/aido chunk00003: 3 bases, mean MLM loss 1.500 nats"


def test_pretraining_export_gather_and_finetuning_report_their_numbers(tmp_path):
    summary = tmp_path / "summary.json"
    summary.write_text(
        json.dumps({"final_step": 100, "validation_loss_nats": 1.3211, "composition_entropy_nats": 1.3847})
    )
    assert job_line("pretrain_model", [str(summary), str(tmp_path / "curves.png")], {"run": "demo"}) == (
        "pretrained demo: step 100, validation loss 1.3211 nats (base-composition entropy 1.3847 nats)"
    )

    config = tmp_path / "models" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"dnafm_pretraining_context_tokens": 256}))
    assert job_line("export_model", [str(config)], {"run": "demo"}) == (
        f"exported demo to {config.parent}/ (256-token context)"
    )

    tracks = tmp_path / "tracks.json"
    tracks.write_text(json.dumps({"scored_bp": 154478, "tracks": ["a.bw"] * 9}))
    assert job_line("gather_tracks", [str(tracks)], {"genome": "g", "model": "m"}) == (
        f"tracks g/m: 154,478 bases scored, 9 tracks in {tmp_path}/"
    )

    table = tmp_path / "comparison.tsv"
    table.write_text(
        "initialisation\tepochs\ttest_accuracy\ttest_mcc\npretrained\t2\t0.6420\t0.3330\nscratch\t2\t0.6590\t0.4090\n"
    )
    assert job_line("compare_finetuning", [str(table)], {}) == (
        "fine-tuned (test split): pretrained accuracy 0.642, MCC 0.333; scratch accuracy 0.659, MCC 0.409"
    )


def test_rules_without_a_number_and_unreadable_outputs_give_no_line(tmp_path):
    assert job_line("write_browser_files", ["x"], {}) is None
    assert job_line("score_chunk", [str(tmp_path / "missing.npz")], {"genome": "g", "model": "m", "chunk": "c"}) is None


def test_the_summary_lists_track_folders_the_serve_command_and_sessions(tmp_path):
    results = tmp_path / "results"
    done, missing = results / "tracks" / "g1" / "aido", results / "tracks" / "g2" / "aido"
    done.mkdir(parents=True)
    for name in ("tracks.json", "igv.html", "igv_session.xml"):
        (done / name).write_text("{}")
    text = tracks_summary(results, [done, missing])
    assert text.splitlines() == [
        "Tracks (bigWig/BED, one folder per genome and model):",
        f"  {done}/",
        "In a web browser (igv.js): serve the results folder, then open a page:",
        f"  python3 -m http.server -d {results} 8000",
        "  http://localhost:8000/tracks/g1/aido/igv.html",
        "In IGV desktop: File > Open Session...",
        f"  {done}/igv_session.xml",
    ]
    assert tracks_summary(results, [missing]) == ""
