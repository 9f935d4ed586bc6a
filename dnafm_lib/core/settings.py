"""Settings: mappings, a config file's section and command-line text → one typed, validated dataclass.

Every settings class (pretraining's ``TrainConfig``; fine-tuning's ``TaskConfig``, ``DataConfig``
and ``TrainerConfig``; the tracks' ``ScoringSettings``; generation's ``SamplerSettings``) is a
dataclass deriving from ``Settings`` and is built the one way here::

    TrainConfig.load(Layer(yaml_section, Origin("config/x.yaml", "pretrain.train.")),
                     Layer.from_text(TrainConfig, {"max_steps": "10"}, Origin(prefix="--set ")))

Layers are applied in order, later ones winning. Each says where its values came from and how a
key is spelled there, so every error is one ``SettingsError`` naming the setting as the user
wrote it and where: ``config/x.yaml: pretrain.train.max_steps must be an integer, got '10' (str)``,
``--set max_steps must be an integer, got 'ten'``, ``--top-k must be 0 (off) or 1-4 ...``.

``load`` refuses unknown keys, checks each value against its field's annotation (an int is a
float, a path a string; command-line text is read as the field's type by jsonargparse, the
parser under LightningCLI, so ``"32"`` stays text for a string field), builds the dataclass and
calls ``validate()``: the class lists its rules in ``problems()`` and the first one broken is
raised, named by the layer that gave that value.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import types
import typing
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from dnafm_lib.core.errors import DnafmError


class SettingsError(DnafmError):
    """A setting that is unknown, of the wrong type or out of range (named, with where it came from)."""


@dataclass(frozen=True)
class Origin:
    """Where a layer's values came from and how a setting is spelled there."""

    where: str = ""  # a file or an option ("config/config.yaml", "--config-json"); "" = the flags themselves
    prefix: str = ""  # written before the key: "pretrain.train.", "--trainer.", "--set ", "--"
    dashes: bool = False  # keys written with '-' for '_' (flags such as --top-k)
    spelled: Mapping[str, str] = field(default_factory=dict)  # keys written otherwise (embedding_layer: --layer)

    def spell(self, key: str) -> str:
        return self.spelled.get(key) or self.prefix + (key.replace("_", "-") if self.dashes else key)

    def at(self, text: str) -> str:
        return f"{self.where}: {text}" if self.where else text

    def name(self, key: str) -> str:
        return self.at(self.spell(key))


@dataclass(frozen=True)
class Layer:
    """One source of values: a mapping (YAML, JSON, Python), or command-line text via ``from_text``."""

    values: Mapping[str, Any]
    origin: Origin = Origin()

    @classmethod
    def from_text(cls, settings_class: type, texts: Mapping[str, str], origin: Origin = Origin()) -> Layer:
        """Command-line text (``"10"``, ``"true"``, ``"{a: 1}"``, ``"null"``) read as each field's
        type; text that does not fit is an error naming it, names that are no field are kept for
        ``load`` to report."""
        fields = _field_types(settings_class)
        known = {key: text for key, text in texts.items() if key in fields}
        return cls({**texts, **_parse_texts(settings_class, known, origin)}, origin)


class Settings:
    """Base of the settings dataclasses: ``load``/``from_mapping`` build them, ``validate`` checks them."""

    #: the config section: accepted as a key prefix (``model.backbone``) and the default spelling
    SECTION: ClassVar[str] = ""
    #: how a setting no layer gave is named (e.g. a required one left out); default: SECTION.key
    ORIGIN: ClassVar[Origin | None] = None
    #: the error raised (SettingsError or a subclass a caller may already catch)
    ERROR: ClassVar[type[SettingsError]] = SettingsError

    # ------------------------------------------------------------------ rules

    def problems(self) -> Iterator[tuple[str, str]]:
        """(setting, what is wrong with it) for every rule broken; subclasses state their rules."""
        return iter(())

    def validate(self, origins: Mapping[str, Origin] | None = None) -> Self:
        """Raise the first problem as one error naming the setting where ``origins`` says it came from."""
        for key, problem in self.problems():
            origin = (origins or {}).get(key) or self.default_origin()
            raise self.ERROR(f"{origin.name(key)} {problem}")
        return self

    @classmethod
    def default_origin(cls) -> Origin:
        return cls.ORIGIN or Origin(prefix=f"{cls.SECTION}." if cls.SECTION else "")

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, *layers: Layer) -> Self:
        """The defaults, then each layer in turn; unknown keys and wrong types are errors naming them."""
        annotations = _field_types(cls)
        values: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        for layer in layers:
            origin = layer.origin
            if not isinstance(layer.values, Mapping):
                raise cls.ERROR(origin.at(f"expected a mapping of settings, got {type(layer.values).__name__}"))
            given = {cls._key(raw): value for raw, value in layer.values.items()}
            unknown = [key for key in given if key not in annotations]
            if unknown:
                known = ", ".join(cls.default_origin().spell(key) for key in annotations)
                spelled = ", ".join(origin.spell(key) for key in unknown)
                raise cls.ERROR(origin.at(f"unknown setting {spelled}; known: {known}"))
            for key, value in given.items():
                values[key] = _typed(value, annotations[key], origin.name(key), cls.ERROR)
                origins[key] = origin
        return cls(**values).validate(origins)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "", prefix: str | None = None) -> Self:
        """One mapping (YAML/JSON/Python) from ``where``; keys are spelled ``prefix + key`` in errors."""
        origin = dataclasses.replace(cls.default_origin(), where=where)
        if prefix is not None:
            origin = dataclasses.replace(origin, prefix=prefix)
        return cls.load(Layer(values, origin))

    @classmethod
    def _key(cls, raw: Any) -> str:
        key = str(raw)
        section = f"{cls.SECTION}."
        return key[len(section) :] if cls.SECTION and key.startswith(section) else key

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked like any other settings."""
        return type(self).load(Layer(dataclasses.asdict(self)), Layer(changes))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- types


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _describe(annotation: Any) -> str:
    """What a value of ``annotation`` is, in words for an error message."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        named = [_describe(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in typing.get_args(annotation) else "")
    base = typing.get_origin(annotation) or annotation
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}
    return words.get(base, getattr(base, "__name__", str(base)))


class _WrongType(Exception):
    pass


def _convert(value: Any, annotation: Any) -> Any:
    """``value`` as ``annotation``: an int is also a float, a path a string, YAML's mapping a dict."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option)
            except _WrongType:
                pass
        raise _WrongType
    base = typing.get_origin(annotation) or annotation
    if base is bool and isinstance(value, bool):
        return value
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base is str and isinstance(value, (str, os.PathLike)):
        return str(value)
    if base is dict and isinstance(value, Mapping):
        return dict(value)
    if base not in (bool, int, float, str, dict):
        return value  # a type with no rule here: the class's problems() judge it
    raise _WrongType


def _typed(value: Any, annotation: Any, name: str, error: type[SettingsError]) -> Any:
    try:
        return _convert(value, annotation)
    except _WrongType:
        raise error(f"{name} must be {_describe(annotation)}, got {value!r} ({type(value).__name__})") from None


@functools.cache
def _text_parser(cls):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    for key, annotation in _field_types(cls).items():  # the resolved types, as jsonargparse reads them
        parser.add_argument(f"--{key}", type=annotation)
    return parser


def _parse_texts(cls, texts: dict[str, str], origin: Origin) -> dict[str, Any]:
    from jsonargparse import ArgumentError

    if not texts:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jsonargparse's deprecation notes concern its own CLI use
            parsed = _text_parser(cls).parse_args([f"--{key}={text}" for key, text in texts.items()])
    except ArgumentError as exc:
        found = re.search(r'Parser key "(\w+)"', str(exc))
        key = found.group(1) if found and found.group(1) in texts else next(iter(texts))
        annotation = _field_types(cls)[key]
        raise cls.ERROR(f"{origin.name(key)} must be {_describe(annotation)}, got {texts[key]!r}") from None
    return {key: getattr(parsed, key) for key in texts}
