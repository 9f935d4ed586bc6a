"""Command-line text becomes each settings field's type (jsonargparse), with one error naming the flag."""

import pytest

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.settings import typed_values
from dnafm_lib.finetune.trainer import TrainerConfig
from dnafm_lib.train.config import TrainConfig


def test_text_becomes_the_field_types_of_the_settings_class():
    typed = typed_values(
        TrainConfig,
        {
            "max_steps": "10",
            "learning_rate": "1e-3",
            "compile": "true",
            "validation_manifest": "null",
            "model_overrides": "{num_hidden_layers: 2}",
            "run_dir": "results/pretrain/7",
        },
        str,
    )
    assert typed == {
        "max_steps": 10,
        "learning_rate": 1e-3,
        "compile": True,
        "validation_manifest": None,
        "model_overrides": {"num_hidden_layers": 2},
        "run_dir": "results/pretrain/7",
    }
    assert TrainConfig.from_mapping({**typed, "warmup_steps": 5}).max_steps == 10


def test_a_string_field_keeps_text_that_looks_like_a_number():
    # "32" is a precision name, not the integer 32: the field's type decides, not the text's look
    assert typed_values(TrainerConfig, {"precision": "32"}, str) == {"precision": "32"}
    assert TrainerConfig(out_dir="x", precision="32").validate().precision == "32"


def test_text_that_does_not_fit_the_field_is_one_error_naming_the_flag():
    with pytest.raises(DnafmError, match=r"^--set max_steps must be int, got 'ten'$"):
        typed_values(TrainConfig, {"learning_rate": "0.1", "max_steps": "ten"}, lambda key: f"--set {key}")


def test_unknown_names_are_left_for_the_settings_class_to_report():
    typed = typed_values(TrainConfig, {"learning_rat": "1e-3"}, str)
    assert typed == {"learning_rat": "1e-3"}
    with pytest.raises(DnafmError, match=r"unknown setting\(s\) learning_rat"):
        TrainConfig.from_mapping(typed)
