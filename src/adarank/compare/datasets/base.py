"""What a generation dataset is: (prompt, completion) pairs with the metric that scores them.

Classification datasets keep their own type (:class:`adarank.compare.data.TextClassificationData`);
a generation task trains a causal LM on ``prompt + completion`` with the loss on the completion's tokens
only, decodes greedily from each test prompt and scores the decoded text against the reference
completion with ``metric`` (a key of :data:`adarank.compare.metrics.METRICS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GenerationData:
    """Train and test (prompt, completion) pairs of one dataset, and how to score them.

    ``strata`` (optional) gives each training example a class (its label word for a label task), so a
    validation split or a subsample can be stratified; ``None`` means plain seeded random splits.
    ``max_new_tokens`` caps greedy decoding at evaluation; it should cover the longest reference.
    """

    name: str
    train_prompts: list[str]
    train_completions: list[str]
    test_prompts: list[str]
    test_completions: list[str]
    metric: str
    max_new_tokens: int
    split: dict = field(default_factory=dict)
    strata: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.train_prompts) != len(self.train_completions) or len(self.test_prompts) != len(self.test_completions):
            raise ValueError("prompts and completions must have the same length in each split")
        if self.strata is not None and len(self.strata) != len(self.train_prompts):
            raise ValueError("strata must give one class per training example")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
