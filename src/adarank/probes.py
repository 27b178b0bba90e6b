"""Probe inputs: the texts whose outputs the perturbed models are compared on.

The paper probes with a handful of generic English sentences, not task data, so a plan can be made
before the task's data is at hand. The built-in set below follows that idea; any text file, JSONL or
CSV column, or Python list replaces it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .errors import AdaRankError

BUILTIN_SENTENCES: tuple[str, ...] = (
    "The river rose quickly after three days of heavy rain in the mountains.",
    "She opened the old wooden box and found a bundle of letters tied with string.",
    "Prices for fresh vegetables usually fall in late summer, when local farms harvest most of their crops.",
    "How many moons does Jupiter have?",
    "The committee postponed its decision until the budget report was complete.",
    "A small bakery on the corner sells bread that is still warm at seven in the morning.",
    "Photosynthesis converts light energy into chemical energy stored in sugar molecules.",
    "He missed the last train and walked home through the quiet streets.",
    "The novel follows a young engineer who returns to her home town to rebuild a bridge destroyed by a flood, "
    "and discovers that the town has changed far more than she expected.",
    "Who painted the ceiling of the Sistine Chapel?",
    "The match ended in a draw after both goalkeepers made remarkable saves in extra time.",
    "Regular exercise and enough sleep lower the risk of many chronic diseases.",
    "The software update fixed a bug that caused the application to crash when saving large files.",
    "Honestly, the film was too long, but the music was wonderful.",
    "In 1869 the Suez Canal opened, shortening the sea route between Europe and Asia.",
    "Please remember to switch off the lights before you leave the office.",
    "The recipe calls for two eggs, a cup of flour and a pinch of salt.",
    "Volcanic ash can disrupt air travel across an entire continent.",
    "Why do cats purr?",
    "The orchestra rehearsed the symphony for weeks before the opening night, and the conductor still asked "
    "for one more run through the slow movement.",
    "Interest rates were left unchanged at the central bank's latest meeting.",
    "Children learn new words fastest when they hear them in many different situations.",
    "The hotel room was clean and quiet, although the view was disappointing.",
    "Glaciers in the Alps have lost a large part of their volume over the last century.",
)


#: Probes only have to excite the model (the paper uses a handful of sentences), while every text is
#: tokenised and held in memory at once; these limits keep a wrong --probe (a whole corpus, a dump)
#: from exhausting memory before anything useful happens.
MAX_PROBE_BYTES = 16 * 1024 * 1024
MAX_PROBE_TEXTS = 4096

# Data formats that are not text and would otherwise be read as lines of garbage.
_BINARY_SUFFIXES = {".parquet", ".arrow", ".feather", ".pkl", ".pickle", ".npy", ".npz", ".pt", ".bin",
                    ".safetensors", ".gz", ".zip", ".xz", ".bz2", ".zst", ".xlsx", ".h5"}
_BINARY_MAGIC = {b"PAR1": "Parquet", b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "gzip", b"ARROW1": "Arrow"}


@dataclass(frozen=True)
class ProbeSet:
    """Texts plus a one-line description that is stored in the plan."""

    texts: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        if not self.texts:
            raise AdaRankError(f"probe input '{self.description}' is empty; give at least one non-empty example")
        if len(self.texts) > MAX_PROBE_TEXTS:
            raise AdaRankError(
                f"probe input '{self.description}' has {len(self.texts)} texts, more than the {MAX_PROBE_TEXTS} "
                "adarank accepts (all are tokenised and held in memory at once, and a few dozen suffice); "
                "give a sample of them"
            )


def builtin_probes() -> ProbeSet:
    return ProbeSet(BUILTIN_SENTENCES, f"builtin:{len(BUILTIN_SENTENCES)} generic English sentences")


def probes_from_texts(texts: Sequence[str], description: str = "python list") -> ProbeSet:
    """Blank texts are dropped; a non-string is refused, as str() would make None the probe text "None"."""
    wrong = next((t for t in texts if not isinstance(t, str)), "")
    if not isinstance(wrong, str):
        raise AdaRankError(f"probe input '{description}' holds {type(wrong).__name__} {str(wrong)[:40]!r}, "
                           "not a string; give texts only")
    cleaned = tuple(t.strip() for t in texts if t.strip())
    return ProbeSet(cleaned, f"{description}:{len(cleaned)} texts")


def _read_text(path: Path) -> str:
    if path.suffix.lower() in _BINARY_SUFFIXES:
        raise AdaRankError(f"probe file '{path}' is a {path.suffix} data file, not text; export its text column "
                           "to a .txt, .jsonl or .csv file")
    try:
        size = path.stat().st_size
        if size > MAX_PROBE_BYTES:
            raise AdaRankError(
                f"probe file '{path}' is {size / 2**20:.0f} MiB, more than the {MAX_PROBE_BYTES // 2**20} MiB adarank "
                "reads (probes are held in memory at once, and a few dozen texts suffice); give a sample of it"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AdaRankError(f"probe file '{path}' does not exist; check the --probe path") from None
    except OSError as exc:
        raise AdaRankError(f"cannot read probe file '{path}': {exc.strerror}") from None
    for magic, kind in _BINARY_MAGIC.items():
        if raw.startswith(magic):
            raise AdaRankError(f"probe file '{path}' is {kind} data, not text; export its text column "
                               "to a .txt, .jsonl or .csv file")
    if b"\x00" in raw:
        raise AdaRankError(f"probe file '{path}' looks binary (NUL bytes); give a UTF-8 text, JSONL or CSV file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AdaRankError(
            f"probe file '{path}' is not valid UTF-8 (byte {exc.start}); re-encode it as UTF-8"
        ) from None


def load_probe_file(path: str | Path, column: str = "text") -> ProbeSet:
    """One example a line (``.txt`` and anything else), or a ``column`` of a JSONL / CSV / TSV file."""
    p = Path(path)
    text = _read_text(p)
    suffix = p.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        texts = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row: Any = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                raise AdaRankError(f"probe file '{p}' line {lineno} is not valid JSON; fix or remove that line") from None
            if not isinstance(row, dict) or column not in row:
                keys = ", ".join(row) if isinstance(row, dict) else type(row).__name__
                raise AdaRankError(
                    f"probe file '{p}' line {lineno} has no column '{column}' (it has: {keys}); "
                    "choose one with --probe-column"
                )
            value = row[column]
            if not isinstance(value, str):
                # str() would turn null into the probe text "None" and a list into "['a', 'b']"
                raise AdaRankError(
                    f"probe file '{p}' line {lineno}: column '{column}' holds {type(value).__name__} "
                    f"{json.dumps(value)[:40]}, not a string; give one text per line"
                )
            texts.append(value)
    elif suffix in {".csv", ".tsv"}:
        texts = _read_csv_column(p, text, column, "\t" if suffix == ".tsv" else ",")
    else:
        texts = text.splitlines()
    return probes_from_texts(texts, description=f"file:{p.name}")


def _read_csv_column(p: Path, text: str, column: str, delimiter: str) -> list[str]:
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    try:
        if reader.fieldnames is None or column not in reader.fieldnames:
            have = ", ".join(reader.fieldnames or [])
            raise AdaRankError(
                f"probe file '{p}' has no column '{column}' (it has: {have or 'no header'}); "
                "choose one with --probe-column"
            )
        return [row[column] or "" for row in reader]
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit(), or a NUL in a quoted field
        raise AdaRankError(f"probe file '{p}' line {reader.line_num}: {exc}; "
                           "split or shorten that field, or give the texts as a .txt file") from None


@dataclass
class ProbeBatch:
    """Tokenised probes, right-padded; ``attention_mask`` marks real tokens so padding never counts."""

    inputs: dict[str, torch.Tensor]
    truncated: int  # how many examples lost tokens to the length limit

    @property
    def attention_mask(self) -> torch.Tensor:
        return self.inputs["attention_mask"]

    def __len__(self) -> int:
        return int(self.attention_mask.shape[0])

    def to(self, device: torch.device | str) -> "ProbeBatch":
        return ProbeBatch({k: v.to(device) for k, v in self.inputs.items()}, self.truncated)

    def select(self, index: slice) -> "ProbeBatch":
        """A slice of examples, cropped to the longest real sequence in it (less padding to compute)."""
        part = {k: v[index] for k, v in self.inputs.items()}
        longest = int(part["attention_mask"].sum(dim=1).max())
        part = {k: (v[:, :longest] if v.dim() >= 2 else v) for k, v in part.items()}
        return ProbeBatch(part, 0)

    def repeat(self, times: int) -> dict[str, torch.Tensor]:
        """The batch stacked ``times`` times along the batch dimension: replica r holds rows r*n..r*n+n-1."""
        return {k: v.repeat(times, *([1] * (v.dim() - 1))) for k, v in self.inputs.items()}


def check_takes_text(model: Any) -> None:
    """Refuse a model whose forward does not take ``input_ids``: probes are text, and a vision or
    audio model given token ids fails deep inside its forward (e.g. ViT's ``pixel_values`` is None)."""
    import inspect

    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if named and not any(p.name == "input_ids" for p in named):
        raise AdaRankError(
            f"{type(model).__name__} takes '{named[0].name}', not text token ids: adarank probes a model with "
            "text, so it scores text models only; give a text encoder or decoder"
        )


def tokenize_probes(tokenizer: Any, probes: ProbeSet, max_length: int | None = None) -> ProbeBatch:
    """Tokenise without touching the tokenizer's settings (GPT-2 has no pad token; we pad ourselves).

    Texts longer than the model's maximum length are truncated and counted, never refused: a probe
    only has to excite the model, and a truncated sentence still does.
    """
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise AdaRankError(f"max_length must be a whole number of tokens >= 1, got {max_length!r}; "
                           "omit --max-length to use the model's limit")
    limit = max_length or getattr(tokenizer, "model_max_length", None) or 512
    if limit > 100_000:  # tokenizers without a known limit report a huge sentinel
        limit = 512
    encoded = [tokenizer(t, truncation=False, add_special_tokens=True) for t in probes.texts]
    truncated = sum(len(e["input_ids"]) > limit for e in encoded)
    length = min(limit, max(len(e["input_ids"]) for e in encoded))
    pad_id = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else 0
    keys = [k for k in encoded[0].keys() if k in {"input_ids", "token_type_ids"}]
    out = {k: torch.full((len(encoded), length), pad_id if k == "input_ids" else 0, dtype=torch.long) for k in keys}
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for i, enc in enumerate(encoded):
        n = min(len(enc["input_ids"]), length)
        for k in keys:
            out[k][i, :n] = torch.tensor(enc[k][:n], dtype=torch.long)
        mask[i, :n] = 1
    if int(mask.sum(dim=1).min()) == 0:
        raise AdaRankError("a probe text tokenised to zero tokens; remove empty or whitespace-only examples")
    out["attention_mask"] = mask
    return ProbeBatch(out, truncated)
