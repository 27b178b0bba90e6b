"""What every registry here (signals, transforms, rounding rules, tasks, metrics, methods) does the same way.

Each extension point is a plain ``dict`` from name to entry, filled at import time by its modules'
``register`` calls; these two functions are the shared add and look-up, so that every registry
refuses a duplicate name and answers an unknown one in the same words.
"""

from __future__ import annotations

from typing import Any, Mapping, MutableMapping, TypeVar

from .errors import AdaRankError

Entry = TypeVar("Entry")


def add_unique(registry: MutableMapping[str, Entry], entry: Entry, what: str) -> Entry:
    """Put ``entry`` into ``registry`` under its ``name``; a second entry of one name is a bug in the
    code that registers it, not bad user input, so it raises ``ValueError``."""
    name: Any = getattr(entry, "name")
    if name in registry:
        raise ValueError(f"{what} {name!r} is already registered (registered twice)")
    registry[name] = entry
    return entry


def lookup(registry: Mapping[str, Entry], name: str, what: str) -> Entry:
    """``registry[name]``, or an :class:`AdaRankError` that lists the names there are."""
    try:
        return registry[name]
    except KeyError:
        raise AdaRankError(f"unknown {what} {name!r}; use one of {', '.join(registry)}") from None
