"""The interface a training task implements (see :mod:`adarank.compare.tasks`)."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch import nn

#: name of the loss path that computes the model's own loss, ``model(**batch).loss`` (logits at every position)
FULL_LOGITS = "full"
#: the loss path of TRL's SFTTrainer: log-probabilities from its fused LM head, no full-vocabulary logits kept
FUSED_LM_HEAD = "trl-fused-lm-head"


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
    #: the trainer a run of this task trains with (``"transformers.Trainer"`` or ``"trl.SFTTrainer"``)
    trainer: str = "transformers.Trainer"
    #: how that trainer computes the loss (the record's ``loss_logits``)
    trainer_loss: str = FULL_LOGITS
    help: str = ""

    def data_type(self) -> type:
        raise NotImplementedError

    def load_model(self, model_path: str, data: Any, dtype_kwarg: str) -> nn.Module:
        """The pretrained model with this task's head, in fp32 (the trainer's bf16 autocast handles bf16)."""
        raise NotImplementedError

    def heads(self, model: nn.Module) -> list[str]:
        """Names of the new modules trained in full beside LoRA (PEFT ``modules_to_save``)."""
        return []

    def train_columns(self, train: Batches) -> dict[str, list]:
        """The training split as the columns of a ``datasets.Dataset`` that :attr:`trainer` trains on."""
        raise NotImplementedError

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
