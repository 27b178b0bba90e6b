"""Sequence classification: a new head on the pooled / last token, scored by accuracy (and macro-F1)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import AdaRankError
from .registry import register
from .base import Task


def macro_f1(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray) -> float:
    """Mean over classes present in ``labels`` or ``preds`` of F1 = 2TP / (2TP + FP + FN)."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(preds, dtype=np.int64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D of equal length, got {y.shape} and {p.shape}")
    if y.size == 0:
        raise ValueError("macro-F1 of zero examples is undefined")
    scores = []
    for c in np.union1d(y, p):
        tp = int(np.sum((y == c) & (p == c)))
        fp = int(np.sum((y != c) & (p == c)))
        fn = int(np.sum((y == c) & (p != c)))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def head_module_names(model: nn.Module) -> list[str]:
    """Top-level children of a task model, other than its backbone, that hold parameters (the head)."""
    prefix = getattr(model, "base_model_prefix", "")
    names = [n for n, child in model.named_children()
             if n != prefix and any(True for _ in child.parameters())]
    if not names:
        raise AdaRankError(f"cannot find the classification head of {type(model).__name__}; "
                           "use a model class with a task head next to its backbone")
    return names


class Encoded:
    """Texts tokenised once (no padding); batches are padded to their longest member."""

    def __init__(self, tokenizer: Any, texts: Sequence[str], labels: Sequence[int] | None, max_length: int) -> None:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        self.keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        self.columns = {k: [list(v) for v in enc[k]] for k in self.keys}
        if "attention_mask" not in self.columns:
            self.columns["attention_mask"] = [[1] * len(ids) for ids in self.columns["input_ids"]]
            self.keys.append("attention_mask")
        self.lengths = np.array([len(ids) for ids in self.columns["input_ids"]], dtype=np.int64)
        self.labels = None if labels is None else torch.as_tensor(list(labels), dtype=torch.long)
        self.pad_id = int(tokenizer.pad_token_id)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, index: Sequence[int], device: torch.device, *, with_labels: bool = True) -> dict[str, torch.Tensor]:
        idx = [int(i) for i in index]
        width = int(self.lengths[idx].max())
        out: dict[str, torch.Tensor] = {}
        for key in self.keys:
            fill = self.pad_id if key == "input_ids" else 0
            rows = [self.columns[key][i] + [fill] * (width - len(self.columns[key][i])) for i in idx]
            out[key] = torch.tensor(rows, dtype=torch.long, device=device)
        if with_labels and self.labels is not None:
            out["labels"] = self.labels[idx].to(device)
        return out


class Classification(Task):
    name = "classification"
    peft_task_type = "SEQ_CLS"
    help = "a new head on the pooled / last token; accuracy (and macro-F1) on the test split"

    def data_type(self) -> type:
        from ..data import TextClassificationData

        return TextClassificationData

    def sizes(self, data: Any) -> tuple[int, int]:
        num_labels = int(data.num_labels)
        for what, labels in (("train", data.train_labels), ("test", data.test_labels)):
            bad = [y for y in labels if not (0 <= int(y) < num_labels)]
            if bad:
                raise AdaRankError(f"{what} label {bad[0]!r} of dataset {data.name!r} is outside 0..{num_labels - 1}")
        return len(data.train_texts), len(data.test_texts)

    def load_model(self, model_path: str, data: Any, dtype_kwarg: str) -> nn.Module:
        from transformers import AutoModelForSequenceClassification

        num_labels = int(data.num_labels)
        label_names = list(getattr(data, "label_names", None) or [])
        kwargs: dict[str, Any] = {"num_labels": num_labels, dtype_kwarg: torch.float32}
        if len(label_names) == num_labels:
            kwargs["id2label"] = {i: str(n) for i, n in enumerate(label_names)}
            kwargs["label2id"] = {str(n): i for i, n in enumerate(label_names)}
        return AutoModelForSequenceClassification.from_pretrained(model_path, **kwargs)

    def heads(self, model: nn.Module) -> list[str]:
        return head_module_names(model)

    def train_columns(self, train: Encoded) -> dict[str, list]:  # type: ignore[override]
        """Unpadded token columns and the labels: ``DataCollatorWithPadding`` pads each batch to its longest."""
        return {**{k: train.columns[k] for k in train.keys}, "labels": train.labels.tolist()}  # type: ignore[union-attr]

    def encode(self, tokenizer: Any, data: Any, config: Any, split: str) -> Encoded:
        if split == "train":
            return Encoded(tokenizer, data.train_texts, data.train_labels, config.max_length)
        return Encoded(tokenizer, data.test_texts, data.test_labels, config.max_length)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, tokenizer: Any, data: Any, test: Encoded, config: Any,  # type: ignore[override]
                 device: torch.device, autocast: dict[str, Any]) -> dict[str, Any]:
        model.eval()
        by_length = np.argsort(test.lengths, kind="stable")
        preds = np.empty(len(test), dtype=np.int64)
        for start in range(0, len(test), config.eval_batch_size):
            idx = by_length[start:start + config.eval_batch_size]
            batch = test.batch(idx, device, with_labels=False)
            with torch.autocast(**autocast):
                logits = model(**batch).logits
            preds[idx] = logits.float().argmax(dim=-1).cpu().numpy()
        labels = test.labels.numpy()  # type: ignore[union-attr]
        accuracy = float(np.mean(preds == labels))
        return {"score": accuracy, "metric": "accuracy", "test_accuracy": accuracy,
                "test_macro_f1": macro_f1(labels, preds)}


register(Classification())
