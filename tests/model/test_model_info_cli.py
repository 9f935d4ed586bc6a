import json
import subprocess
import sys

from dnafm_lib import load_model, save_model
from dnafm_lib.cli import main


def test_model_info_prints_the_7b_configuration_and_parameter_count(capsys):
    assert main(["model-info", "--preset", "7b", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_parameters"] == 7_285_036_304
    assert (info["hidden_size"], info["num_hidden_layers"], info["num_attention_heads"]) == (4352, 32, 32)
    assert info["intermediate_size"] == 11584 and info["vocab_size"] == 16


def test_model_info_reads_a_checkpoint_directory(tmp_path, capsys):
    save_model(load_model("tiny"), tmp_path / "m")
    assert main(["model-info", "--checkpoint", str(tmp_path / "m"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hidden_size"] == 128


def test_a_bad_checkpoint_is_one_clean_error_line(tmp_path, capsys):
    assert main(["model-info", "--checkpoint", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dnafm model-info: error: {tmp_path}: no config.json"]


def test_help_lists_the_subcommands():
    out = subprocess.run(
        [sys.executable, "-m", "dnafm_lib", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "model-info" in out


def test_unknown_preset_is_one_clean_error_line(capsys):
    assert main(["model-info", "--preset", "huge"]) == 1
    assert capsys.readouterr().err.strip() == (
        "dnafm model-info: error: unknown model preset 'huge'; choose one of tiny, 300m, 7b"
    )
