"""Generation datasets by name: the registry, the built-in corpora, user files and hub datasets.

:data:`DATASETS` maps each built-in name to its :class:`DatasetEntry`. Every module of this package is
imported here, and a built-in registers itself when imported, so adding a dataset is adding one file that
calls :func:`register`. :func:`load_generation_spec` loads a built-in, a local file or an ``hf:`` dataset;
:func:`hold_out_validation` carves a validation split out of the training set.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import GenerationData
from .hub import from_hf_generation
from .registry import DATASETS, DatasetEntry, register, resolve
from .spec import load_generation_spec
from .splits import hold_out_validation

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DATASETS", "DatasetEntry", "GenerationData", "from_hf_generation", "hold_out_validation",
           "load_generation_spec", "register", "resolve"]
