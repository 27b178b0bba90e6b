"""Dataclass fields become command-line options: the help text lives next to the field it explains.

A field's ``metadata`` may give ``choices`` and ``help`` as functions, read when the parser is built:
that is how an option whose values come from a registry (``--signal``, ``--rule``, ``--transform``)
lists what is registered at that moment instead of a copy made when the class was defined.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin


def split_list(text: str) -> list[str]:
    """The items of a comma-separated option, stripped, empty ones dropped (``"a, b,"`` -> ``["a", "b"]``)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """The underlying type and whether None is allowed (``int | None`` -> (int, True))."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), True
    return annotation, False


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, *, positional: tuple[str, ...] = ()) -> None:
    """One ``--option`` per field; ``positional`` fields become optional positional arguments."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:
            continue
        help_text = _now(f.metadata.get("help", ""))
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        base, optional = _base_type(hints[f.name])
        kwargs: dict[str, Any] = {"help": help_text + (f" (default: {default})" if default not in (None, False, "") else "")}
        if "choices" in f.metadata:
            kwargs["choices"] = list(_now(f.metadata["choices"]))
            kwargs["type"] = base
        elif get_origin(base) is Literal:
            kwargs["choices"] = list(get_args(base))
            kwargs["type"] = type(get_args(base)[0])
        elif base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif base in (int, float, str):
            kwargs["type"] = base
        if f.name in positional:
            parser.add_argument(f.name, nargs="?", default=default, metavar=f.name.upper(), **kwargs)
            continue
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f.name, default=default, **kwargs)


def field_choices(cls: type) -> dict[str, tuple[Any, ...]]:
    """Each field of ``cls`` whose values are a fixed set -> that set: the ``choices`` of its metadata
    (read now, so a registry's current names), else the values of its ``Literal`` type."""
    hints = typing.get_type_hints(cls)
    found: dict[str, tuple[Any, ...]] = {}
    for f in dataclasses.fields(cls):
        base, _ = _base_type(hints[f.name])
        if "choices" in f.metadata:
            found[f.name] = tuple(_now(f.metadata["choices"]))
        elif get_origin(base) is Literal:
            found[f.name] = get_args(base)
    return found


def _now(value: Any) -> Any:
    return value() if callable(value) else value


def dataclass_from_namespace(cls: type, ns: argparse.Namespace) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(ns).items() if k in names})
