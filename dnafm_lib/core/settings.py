"""Command-line text → the types of a settings dataclass's fields, by jsonargparse.

The CLIs of ``fit``/``test`` (``--model.n_classes 2``) and ``pretrain`` (``--set max_steps=10``)
give values as text; jsonargparse (the parser under LightningCLI) reads each as its field's
annotated type (``int``, ``float``, ``bool``, ``str | None``, ``dict``). The settings classes then
check the values the same way whether they came from a flag, a YAML file or Python.
"""

from __future__ import annotations

import functools
import re
import typing
import warnings
from typing import Any, Callable

from dnafm_lib.core.errors import DnafmError


@functools.cache
def _parser(cls):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls)
    return parser


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def typed_values(cls, texts: dict[str, str], flag: Callable[[str], str]) -> dict[str, Any]:
    """``texts`` (field name → text) as the fields' types; a value that does not parse is one
    DnafmError naming ``flag(name)``. Names that are not fields of ``cls`` are returned as given,
    for the settings class to report."""
    from jsonargparse import ArgumentError

    fields = typing.get_type_hints(cls)
    known = {name: text for name, text in texts.items() if name in fields}
    if not known:
        return dict(texts)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jsonargparse's deprecation notes concern its own CLI use
            parsed = _parser(cls).parse_args([f"--{name}={text}" for name, text in known.items()])
    except ArgumentError as exc:
        found = re.search(r'Parser key "(\w+)"', str(exc))
        name = found.group(1) if found and found.group(1) in known else next(iter(known))
        raise DnafmError(f"{flag(name)} must be {_type_name(fields[name])}, got {known[name]!r}") from None
    return {**texts, **{name: getattr(parsed, name) for name in known}}
