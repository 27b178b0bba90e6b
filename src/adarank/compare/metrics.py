"""Metrics of generation tasks (placeholder registry until the datasets branch lands: exact match only)."""

from __future__ import annotations

from typing import Callable

Metric = Callable[[list[str], list[str]], dict[str, float]]
METRICS: dict[str, Metric] = {}


def register(name: str, metric: Metric) -> Metric:
    METRICS[name] = metric
    return metric


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def exact_match(predictions: list[str], references: list[str]) -> dict[str, float]:
    if len(predictions) != len(references) or not references:
        raise ValueError("exact_match needs as many predictions as references, at least one")
    hits = sum(_first_line(p) == _first_line(r) for p, r in zip(predictions, references))
    return {"score": hits / len(references)}


register("exact_match", exact_match)
