"""The interface a training task implements (see :mod:`adarank.compare.tasks`)."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch import nn

#: name of the loss path that computes the model's own loss, ``model(**batch).loss`` (logits at every position)
FULL_LOGITS = "full"


class Batches(Protocol):
    """A tokenised split: ``len()`` examples, real lengths, and padded batches on a device."""

    lengths: np.ndarray

    def __len__(self) -> int: ...

    def batch(self, index: Sequence[int], device: torch.device, *, with_labels: bool = True) -> dict[str, torch.Tensor]: ...


class Task:
    """One kind of fine-tuning. Subclasses set ``name``, ``peft_task_type`` and the methods below."""

    name: str = ""
    #: PEFT's ``task_type`` for the LoraConfig / AdaLoraConfig of this task
    peft_task_type: str = ""
    help: str = ""

    def data_type(self) -> type:
        raise NotImplementedError

    def load_model(self, model_path: str, data: Any, dtype_kwarg: str) -> nn.Module:
        """The pretrained model with this task's head, in fp32 (autocast handles bf16)."""
        raise NotImplementedError

    def heads(self, model: nn.Module) -> list[str]:
        """Names of the new modules trained in full beside LoRA (PEFT ``modules_to_save``)."""
        return []

    def loss_logits(self, model: nn.Module, config: Any) -> str:
        """The loss path :meth:`training_loss` takes for ``model`` under ``config`` in one run.

        ``FULL_LOGITS`` (the default) is the model's own loss. A task may name a cheaper path that
        gives the same value; the training loop checks it against the full loss on the run's first
        batch and falls back to the full loss (with a warning) if they disagree.
        """
        return FULL_LOGITS

    def training_loss(self, model: nn.Module, batch: dict[str, torch.Tensor], *,
                      logits: str = FULL_LOGITS) -> torch.Tensor:
        """The loss of one training batch along the path ``logits`` (see :meth:`loss_logits`)."""
        if logits != FULL_LOGITS:
            raise ValueError(f"task {self.name!r} has no loss path {logits!r}")
        return model(**batch).loss

    def encode(self, tokenizer: Any, data: Any, config: Any, split: str) -> Batches:
        """The ``"train"`` or ``"test"`` split of ``data``, tokenised once."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, tokenizer: Any, data: Any, test: Batches, config: Any,
                 device: torch.device, autocast: dict[str, Any]) -> dict[str, Any]:
        """Score ``model`` on ``test``: a dict with ``"score"`` (the primary metric, in [0, 1]),
        ``"metric"`` (its name) and any other figures worth recording."""
        raise NotImplementedError

    def sizes(self, data: Any) -> tuple[int, int]:
        """(training examples, test examples) of ``data``."""
        raise NotImplementedError
