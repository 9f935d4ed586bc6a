"""Invariants of the configuration validators: bad values are refused where they are, good ones pass.

Cohort config (``workflow/schemas/config.schema.yaml``; Snakemake's ``validate`` applies it with
jsonschema, as here, where one compiled validator keeps each example in milliseconds):
  F1. the shipped config/config.yaml validates;
  F2. a value of the wrong JSON type at any typed setting is refused, and the error names that
      setting's path;
  F3. an unknown key at the top level or inside a closed section is refused.
Pretraining settings (``train.config.TrainConfig.from_mapping``):
  F4. every setting accepts a value of its own type (an int where a float is expected) and
      refuses any other type with one error naming the setting; unknown settings are named.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from dnafm_lib.train.config import TrainConfig, TrainConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = {
    "string": st.text(max_size=5),
    "integer": st.integers(-5, 5),
    "number": st.floats(-2, 2, allow_nan=False).filter(lambda v: v != int(v)),
    "boolean": st.booleans(),
    "array": st.just([]),
    "object": st.just({}),
}


SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text())
VALIDATOR = Draft202012Validator(SCHEMA_DOC)
DEFAULT_CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _default_config() -> dict:
    return copy.deepcopy(DEFAULT_CONFIG)


def _errors(config: dict) -> list:
    return list(VALIDATOR.iter_errors(config))


def _typed_settings(schema: dict, path: tuple = ()) -> list[tuple[tuple, set]]:
    """(path, allowed JSON types) of every setting of the default config that the schema types."""
    out = []
    for key, sub in schema.get("properties", {}).items():
        types = sub.get("type")
        if types is None:
            continue
        types = {types} if isinstance(types, str) else set(types)
        if "object" in types and "properties" in sub:
            out.extend(_typed_settings(sub, path + (key,)))
        elif types & set(JSON_VALUES):
            out.append((path + (key,), types))
    return out


TYPED = _typed_settings(SCHEMA_DOC)


def _set(config: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        config = config.setdefault(key, {})
    config[path[-1]] = value


def test_the_shipped_config_validates():
    assert _errors(_default_config()) == []  # F1
    assert len(TYPED) > 20  # the walk found the settings


@PROPERTY
@given(st.sampled_from(TYPED), st.data())
def test_a_value_of_the_wrong_type_is_refused_naming_its_setting(setting, data):
    path, allowed = setting
    # JSON Schema: an integer is also a "number"; null only where the schema lists it.
    wrong = sorted(set(JSON_VALUES) - allowed - ({"integer"} if "number" in allowed else set()))
    value = data.draw(st.sampled_from(wrong).flatmap(lambda t: JSON_VALUES[t]))
    config = _default_config()
    _set(config, path, value)
    errors = _errors(config)  # F2: refused, at that setting's path
    assert errors and any(tuple(e.absolute_path) == path for e in errors)


@PROPERTY
@given(st.sampled_from([()] + sorted({p[:-1] for p, _ in TYPED if p[:-1]})), st.text("xyz_", min_size=3, max_size=8))
def test_an_unknown_key_is_refused(section, key):
    schema = SCHEMA_DOC
    for part in section:
        schema = schema["properties"][part]
    if schema.get("additionalProperties", True) is not False:
        return  # an open mapping (e.g. replacements, tracks.models) takes any key
    config = _default_config()
    _set(config, section + (key,), 1)
    errors = _errors(config)  # F3
    assert any(e.validator == "additionalProperties" and tuple(e.absolute_path) == section for e in errors)


FIELDS = {name: value for name, value in TrainConfig().to_dict().items()}
ANY_VALUE = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2, allow_nan=False),
    st.text(max_size=4),
    st.none(),
    st.just({}),
    st.just([1]),
)


def _type_ok(default, value, name) -> bool:
    if name == "validation_manifest" and value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str) or default is None:
        return isinstance(value, str)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return True


@PROPERTY
@given(st.sampled_from(sorted(FIELDS) + ["no_such_setting"]), ANY_VALUE)
def test_pretrain_settings_accept_their_own_type_and_name_any_other(name, value):
    if name not in FIELDS or not _type_ok(FIELDS[name], value, name):
        with pytest.raises(TrainConfigError, match=name):  # F4
            TrainConfig.from_mapping({name: copy.deepcopy(value)})
        return
    try:
        config = TrainConfig.from_mapping({name: copy.deepcopy(value)})
    except TrainConfigError as exc:  # the right type, but out of range or inconsistent: still named
        assert name in str(exc) or "warmup_steps" in str(exc) or "micro_batch_size" in str(exc)
    else:
        assert getattr(config, name) == value
