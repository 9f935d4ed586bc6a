"""The workflow schema's pretrain.train is TrainConfig: same keys, types, choices and defaults' validity."""

import dataclasses
from pathlib import Path

import yaml

from dnafm_lib.model.encoder import ATTENTION_BACKENDS, PRESETS
from dnafm_lib.train.config import CHOICES, WORKFLOW_SET, TrainConfig

REPO = Path(__file__).resolve().parents[2]
JSON_TYPE = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}


def _schema_train() -> dict:
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    return schema["properties"]["pretrain"]["properties"]["train"]


def test_schema_lists_every_train_config_setting_and_no_other():
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - set(WORKFLOW_SET)
    assert set(_schema_train()["properties"]) == fields
    assert _schema_train()["additionalProperties"] is False


def test_schema_types_and_choices_are_train_config_s():
    defaults = TrainConfig()
    properties = _schema_train()["properties"]
    for name, spec in properties.items():
        assert spec["type"] == JSON_TYPE[type(getattr(defaults, name))], name
    for name, allowed in {**CHOICES, "model": tuple(PRESETS), "attn_backend": tuple(ATTENTION_BACKENDS)}.items():
        assert tuple(properties[name]["enum"]) == allowed, name


def test_every_shipped_config_s_train_settings_are_valid_train_config():
    for path in [REPO / "config" / "config.yaml", *sorted((REPO / "config" / "cohorts").glob("*.yaml"))]:
        train = (yaml.safe_load(path.read_text()).get("pretrain") or {}).get("train") or {}
        TrainConfig.from_mapping(train, where=str(path))
