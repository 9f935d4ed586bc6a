"""The one settings mechanism: layers of mappings and command-line text → a checked dataclass,
every error one SettingsError naming the setting as the user wrote it and where."""

import pytest

from dnafm_lib.core.settings import Layer, Origin, SettingsError
from dnafm_lib.finetune.models import TaskConfig
from dnafm_lib.finetune.trainer import TrainerConfig
from dnafm_lib.inference.generate import SamplerSettings
from dnafm_lib.inference.tracks.scoring import ScoringSettings
from dnafm_lib.train.config import TrainConfig

SET = Origin(prefix="--set ")


def test_text_becomes_the_field_types_of_the_settings_class():
    layer = Layer.from_text(
        TrainConfig,
        {
            "max_steps": "10",
            "learning_rate": "1e-3",
            "compile": "true",
            "validation_manifest": "null",
            "model_overrides": "{num_hidden_layers: 2}",
            "run_dir": "results/pretrain/7",
        },
        SET,
    )
    assert layer.values == {
        "max_steps": 10,
        "learning_rate": 1e-3,
        "compile": True,
        "validation_manifest": None,
        "model_overrides": {"num_hidden_layers": 2},
        "run_dir": "results/pretrain/7",
    }
    config = TrainConfig.load(layer, Layer({"warmup_steps": 5}))
    assert (config.max_steps, config.model_overrides, config.validation_manifest) == (
        10,
        {"num_hidden_layers": 2},
        None,
    )


def test_a_string_field_keeps_text_that_looks_like_a_number():
    # "32" is a precision name, not the integer 32: the field's type decides, not the text's look
    layer = Layer.from_text(TrainerConfig, {"precision": "32"}, Origin(prefix="--trainer."))
    assert layer.values == {"precision": "32"}


def test_later_layers_win_and_each_error_names_the_layer_that_gave_the_value():
    file = Layer({"max_steps": 50, "warmup_steps": 0}, Origin("cohort.yaml", "pretrain.train."))
    flags = Layer({"max_steps": 0}, Origin(prefix="--", dashes=True))
    assert TrainConfig.load(file, Layer({"max_steps": 7}, flags.origin)).max_steps == 7
    with pytest.raises(SettingsError, match=r"^--max-steps must be at least 1, got 0$"):
        TrainConfig.load(file, flags)
    with pytest.raises(SettingsError, match=r"^cohort\.yaml: pretrain\.train\.max_steps must be at least 1, got 0$"):
        TrainConfig.load(Layer({"max_steps": 0, "warmup_steps": 0}, file.origin))


def test_a_value_of_the_wrong_type_is_one_error_naming_file_section_and_setting():
    with pytest.raises(
        SettingsError, match=r"^x\.yaml: pretrain\.train\.max_steps must be an integer, got '10' \(str\)$"
    ):
        TrainConfig.from_mapping({"max_steps": "10"}, where="x.yaml", prefix="pretrain.train.")
    with pytest.raises(SettingsError, match=r"^--set max_steps must be an integer, got 'ten'$"):
        Layer.from_text(TrainConfig, {"learning_rate": "0.1", "max_steps": "ten"}, SET)
    with pytest.raises(SettingsError, match=r"^--layer must be an integer or null, got 'top'$"):
        Layer.from_text(ScoringSettings, {"embedding_layer": "top"}, Origin(spelled={"embedding_layer": "--layer"}))


def test_an_unknown_setting_is_named_with_the_known_ones():
    layer = Layer.from_text(TrainConfig, {"learning_rat": "1e-3"}, SET)
    assert layer.values == {"learning_rat": "1e-3"}  # left for load, which names it
    with pytest.raises(
        SettingsError, match=r"^unknown setting --set learning_rat; known: train_manifest, .*learning_rate"
    ):
        TrainConfig.load(layer)
    with pytest.raises(SettingsError, match=r"^t\.yaml: unknown setting model\.n_clases; known: model\.backbone"):
        TaskConfig.from_mapping({"model.n_clases": 2}, where="t.yaml")


def test_a_required_setting_left_out_is_named_in_its_section():
    with pytest.raises(SettingsError, match=r"^trainer\.out_dir is required"):
        TrainerConfig.load(Layer({"max_epochs": 2}, Origin(prefix="--trainer.")))


def test_one_validation_style_the_same_rules_from_python_and_from_the_mechanism():
    with pytest.raises(SettingsError, match=r"^--top-k must be 0 \(off\) or 1-4"):
        SamplerSettings(top_k=5).validate()
    with pytest.raises(SettingsError, match=r"^tracks\.passes must be at least 1, got 0$"):
        ScoringSettings(passes=0).validate()
    with pytest.raises(SettingsError, match=r"^--passes must be at least 1, got 0$"):
        ScoringSettings.load(Layer({"passes": 0}, Origin(prefix="--")))
    assert ScoringSettings.load(Layer({"passes": 3})) == ScoringSettings(passes=3)


def test_replace_checks_the_changed_settings_too():
    config = TrainConfig.from_mapping({"max_steps": 10, "warmup_steps": 5})
    assert config.replace(max_steps=20).max_steps == 20
    with pytest.raises(SettingsError, match="warmup_steps must be between 0 and max_steps"):
        config.replace(max_steps=2)
