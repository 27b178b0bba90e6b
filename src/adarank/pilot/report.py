"""The pilot's report: the decision in one sentence, every arm's numbers, and the plots behind them.

``write_report`` writes ``report.md`` and ``report.html`` (plus the two PNGs the Markdown links to). The
HTML is self-contained — styles inline, plots embedded as base64 PNGs, no scripts — so it can be mailed
or attached to a ticket as one file. Everything that comes from the user (arm labels, model and data
names, the command line) is escaped: ``html.escape`` in HTML, and in Markdown table cells pipes,
newlines, control characters and angle brackets are neutralised so a label cannot break the table or
inject markup.
"""

from __future__ import annotations

import base64
import html
import io
import math
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write, atomic_write_text
from .decision import (
    NON_INFERIOR,
    NOT_SHOWN,
    NOT_TESTED,
    TOO_FEW,
    ArmResult,
    Comparison,
    Decision,
)

REFERENCE = "reference"
#: colour and marker per status, shared by both plots and the legend
STYLE = {
    REFERENCE: ("#1f77b4", "*"),
    NON_INFERIOR: ("#2ca02c", "o"),
    NOT_SHOWN: ("#d62728", "X"),
    NOT_TESTED: ("#7f7f7f", "s"),
    TOO_FEW: ("#ff7f0e", "D"),
}
META_ORDER = ("model", "data", "task", "metric", "current", "alpha_convention", "eval_seeds", "sweep_seeds",
              "command", "adarank_version", "wall_seconds", "runs", "runs_failed", "budget_note")


def _clean(text: Any) -> str:
    """One line of printable text: newlines become spaces, other control characters ``\\xNN``."""
    out = []
    for ch in str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " "):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != " ":
            out.append(" " if ch == "\t" else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def md_cell(text: Any) -> str:
    """``text`` safe inside a Markdown table cell (and as Markdown text generally)."""
    s = _clean(text).replace("\\", "\\\\").replace("|", "\\|")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "\\`")


def h(text: Any) -> str:
    """``text`` safe in HTML text and attribute values."""
    return html.escape(_clean(text), quote=True)


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _ci_of_mean(values: Sequence[float], alpha: float) -> tuple[float, float, float]:
    """Mean and two-sided (1 - 2α) t interval of one arm's mean score over its seeds."""
    from scipy import stats

    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(1 - alpha, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, mean - half, mean + half


def _ordered(decision: Decision, arms: Sequence[ArmResult]) -> list[ArmResult]:
    by_name = {a.name: a for a in arms}
    if decision.reference not in by_name:
        raise ValueError(f"the reference arm '{decision.reference}' is not among the arms handed to the report")
    return [by_name[decision.reference], *(a for a in arms if a.name != decision.reference)]


def _status(arm: ArmResult, decision: Decision) -> str:
    if arm.name == decision.reference:
        return REFERENCE
    step = decision.step(arm.name)
    return step.status if step else NOT_TESTED


def decision_sentence(decision: Decision, arms: Sequence[ArmResult]) -> str:
    """The answer in one sentence (plain text; escape it for the format it goes into)."""
    by_name = {a.name: a for a in arms}
    ref = by_name.get(decision.reference)
    ref_label = ref.label if ref else decision.reference
    points = "point" if decision.margin == 1 else "points"
    test = f"fixed-sequence test, α={decision.alpha:g}"
    if decision.cheapest_non_inferior is None:
        first = next((s for s in decision.steps if s.status != NON_INFERIOR), None)
        why = ""
        if first is not None:
            label = by_name[first.arm].label if first.arm in by_name else first.arm
            why = f"; testing stopped at {label} ({first.status})"
        return (f"No cheaper arm was shown to be not worse than your {ref_label} by more than "
                f"{decision.margin:g} {points} ({test}){why}: keep your configuration.")
    cheap = by_name.get(decision.cheapest_non_inferior)
    label = cheap.label if cheap else decision.cheapest_non_inferior
    share = ""
    if cheap and ref and ref.trainable_params > 0:
        share = f", with {cheap.trainable_params / ref.trainable_params:.0%} of its trainable parameters"
    return (f"{label} is not worse than your {ref_label} by more than {decision.margin:g} {points} "
            f"({test}){share}.")


def _rows(decision: Decision, arms: Sequence[ArmResult]) -> list[dict[str, str]]:
    ordered = _ordered(decision, arms)
    ref = ordered[0]
    rows = []
    for arm in ordered:
        step: Comparison | None = decision.step(arm.name)
        values = list(arm.scores.values())
        sd = arm.sd()
        ratio = arm.trainable_params / ref.trainable_params if ref.trainable_params else float("nan")
        if step is None:
            delta, p = "—", "—"
        else:
            delta = f"{_fmt(step.mean_diff)} [{_fmt(step.ci[0])}, {_fmt(step.ci[1])}]"
            p = _p(step.p_value)
        rows.append({
            "arm": arm.label, "params": f"{arm.trainable_params:,}", "ratio": f"{ratio:.3g}×",
            "max rank": str(arm.max_rank), "lr": f"{arm.lr:.2g}" if arm.lr is not None else "—",
            "mean ± sd": f"{_fmt(arm.mean())} ± {_fmt(sd)}" if values else "—", "n": str(len(values)),
            "Δ vs reference [CI]": delta, "p": p, "status": _status(arm, decision),
        })
    return rows


def _notes(decision: Decision) -> list[str]:
    notes = list(decision.warnings)
    for step in decision.steps:
        if step.status == NOT_SHOWN and step.certifiable_margin is not None and not any(
                n.startswith(f"{step.arm}:") and "too few" in n for n in notes):
            if step.seeds_needed is None:
                notes.append(f"{step.arm}: its mean difference {step.mean_diff:.3g} is below -{decision.margin:g}; "
                             "no number of seeds would show it non-inferior at this margin")
            else:
                notes.append(f"{step.arm}: these seeds certify a margin of {max(step.certifiable_margin, 0):.3g} "
                             f"points; {decision.margin:g} would need about {step.seeds_needed} seeds at 80 % power")
    return notes


def _figure_scores(decision: Decision, arms: Sequence[ArmResult]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = _ordered(decision, arms)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ref_mean = ordered[0].mean()
    seen: set[str] = set()
    for ax, (attr, xlabel) in zip(axes, (("trainable_params", "trainable LoRA parameters"),
                                          ("max_rank", "largest rank of any module"))):
        for arm in ordered:
            status = _status(arm, decision)
            colour, marker = STYLE.get(status, ("black", "o"))
            mean, lo, hi = _ci_of_mean(arm.scores.values(), decision.alpha)
            x = max(float(getattr(arm, attr)), 1.0)
            if not math.isfinite(mean):
                continue
            err = None if not math.isfinite(lo) else [[mean - lo], [hi - mean]]
            ax.errorbar([x], [mean], yerr=err, fmt=marker, color=colour, ms=11 if status == REFERENCE else 7,
                        capsize=3, label=status if status not in seen else None)
            seen.add(status)
            ax.annotate(_plot_text(arm.name), (x, mean), textcoords="offset points", xytext=(5, 4), fontsize=7)
        if math.isfinite(ref_mean):
            ax.axhline(ref_mean - decision.margin, color="#d62728", ls=":", lw=1,
                       label="reference − margin" if ax is axes[0] else None)
        ax.set_xscale("log", base=10 if attr == "trainable_params" else 2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"test score (points), mean ± {1 - 2 * decision.alpha:.0%} CI")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("score against cost, with the ladder's decisions", fontsize=11)
    return _png(fig)


def _figure_lr(sweeps: Mapping[str, Mapping[float, Sequence[float]]], arms: Sequence[ArmResult]) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {name: sorted((float(lr), [float(v) for v in vals]) for lr, vals in sweep.items() if len(vals))
              for name, sweep in sweeps.items()}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    chosen = {a.name: a.lr for a in arms}
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    for name, points in curves.items():
        lrs = [lr for lr, _ in points]
        means = [float(np.mean(v)) for _, v in points]
        sds = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for _, v in points]
        line = ax.errorbar(lrs, means, yerr=sds, marker="o", ms=4, capsize=2, label=_plot_text(name))
        lr = chosen.get(name)
        hits = [i for i, x in enumerate(lrs) if lr is not None and math.isclose(x, float(lr), rel_tol=1e-9)]
        if hits:
            i = hits[0]
            ax.plot([lrs[i]], [means[i]], marker="*", ms=14, color=line[0].get_color(), mec="black")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("validation score (points), mean ± sd over sweep seeds")
    ax.set_title("learning-rate sweeps (★ the rate each arm was evaluated at)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def _plot_text(text: str) -> str:
    """Plot text taken literally: matplotlib would read ``$...$`` as mathtext (and fail on a lone ``$``)."""
    return _clean(text).replace("$", r"\$")


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _meta_items(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    items = []
    for key in [*META_ORDER, *(k for k in meta if k not in META_ORDER and k not in ("recommended", "lr_notes"))]:
        if key not in meta or meta[key] is None:
            continue
        value = meta[key]
        if key == "wall_seconds" and isinstance(value, (int, float)):
            value = f"{value:.0f} s"
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        items.append((key.replace("_", " "), str(value)))
    rec = meta.get("recommended")
    if isinstance(rec, Mapping):
        line = f"{rec.get('name', '')} in {rec.get('folder', '')} (max rank {rec.get('max_rank')}, "
        line += f"vLLM --max-lora-rank {rec.get('max_lora_rank')})"
        best = rec.get("best")
        if isinstance(best, Mapping):
            line += f"; best-scoring {best.get('name', '')} in {best.get('folder', '')}"
        items.append(("recommended", line))
    return items


COLUMNS = ("arm", "params", "ratio", "max rank", "lr", "mean ± sd", "n", "Δ vs reference [CI]", "p", "status")


def render_markdown(decision: Decision, arms: Sequence[ArmResult], meta: Mapping[str, Any],
                    images: Sequence[tuple[str, str]]) -> str:
    """``report.md``; ``images`` are (caption, file name) pairs next to it."""
    lines = ["# adarank pilot report", "", f"**{md_cell(decision_sentence(decision, arms))}**", ""]
    by_name = {a.name: a for a in arms}
    best = by_name.get(decision.best)
    lines += [(f"Highest mean score: {md_cell(best.label if best else decision.best)}. "
              f"Procedure: {md_cell(decision.procedure)}."), ""]
    for key, value in _meta_items(meta):
        lines.append(f"- **{md_cell(key)}**: {md_cell(value)}")
    lines += ["", "## Arms (ladder order)", "", "| " + " | ".join(COLUMNS) + " |",
              "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in _rows(decision, arms):
        lines.append("| " + " | ".join(md_cell(row[c]) for c in COLUMNS) + " |")
    lines += ["", (f"CI: two-sided {1 - 2 * decision.alpha:.0%} interval of the paired mean difference (its lower end "
              "is the one-sided test's bound); p: one-sided non-inferiority p-value."), ""]
    notes = _notes(decision) + [str(n) for n in meta.get("lr_notes") or []]
    if notes:
        lines += ["## Notes", ""] + [f"- {md_cell(n)}" for n in notes] + [""]
    if images:
        lines += ["## Plots", ""] + [f"![{md_cell(caption)}]({name})" for caption, name in images] + [""]
    return "\n".join(lines)


def render_html(decision: Decision, arms: Sequence[ArmResult], meta: Mapping[str, Any],
                images: Sequence[tuple[str, bytes]]) -> str:
    """``report.html``: one file, styles inline, plots as data URIs, no scripts."""
    by_name = {a.name: a for a in arms}
    best = by_name.get(decision.best)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', "<title>adarank pilot report</title>",
             "<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 7px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}.answer{font-size:1.2em;"
             "background:#eef6ee;padding:0.6em;border-left:4px solid #2ca02c}"
             + "".join(f".s-{i}{{color:{c}}}" for i, (c, _) in enumerate(STYLE.values()))
             + "img{max-width:100%}</style></head><body>",
             "<h1>adarank pilot report</h1>",
             f'<p class="answer">{h(decision_sentence(decision, arms))}</p>',
             (f"<p>Highest mean score: {h(best.label if best else decision.best)}. "
             f"Procedure: {h(decision.procedure)}.</p>"), "<ul>"]
    parts += [f"<li><b>{h(k)}</b>: {h(v)}</li>" for k, v in _meta_items(meta)]
    parts += ["</ul>", "<h2>Arms (ladder order)</h2>", "<table><thead><tr>"
              + "".join(f"<th>{h(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>"]
    status_class = {s: i for i, s in enumerate(STYLE)}
    for row in _rows(decision, arms):
        cells = "".join(f"<td>{h(row[c])}</td>" for c in COLUMNS[:-1])
        cls = status_class.get(row["status"], 0)
        parts.append(f'<tr>{cells}<td class="s-{cls}">{h(row["status"])}</td></tr>')
    parts += ["</tbody></table>",
              (f"<p><small>CI: two-sided {1 - 2 * decision.alpha:.0%} interval of the paired mean difference "
              "(its lower end is the one-sided test's bound); p: one-sided non-inferiority p-value.</small></p>")]
    notes = _notes(decision) + [str(n) for n in meta.get("lr_notes") or []]
    if notes:
        parts += ["<h2>Notes</h2>", "<ul>"] + [f"<li>{h(n)}</li>" for n in notes] + ["</ul>"]
    if images:
        parts.append("<h2>Plots</h2>")
        for caption, png in images:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{h(caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{h(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out: Path, decision: Decision, arms: Sequence[ArmResult],
                 sweeps: Mapping[str, Mapping[float, Sequence[float]]],
                 meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` (and the PNGs the Markdown links), each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str, bytes]] = [
        ("score against trainable parameters and largest rank", "report_scores.png", _figure_scores(decision, arms))]
    lr_png = _figure_lr(sweeps, arms)
    if lr_png is not None:
        figures.append(("validation score against learning rate, per arm", "report_lr.png", lr_png))
    for _, name, png in figures:
        atomic_write(out / name, lambda tmp, data=png: tmp.write_bytes(data))
    md = atomic_write_text(out / "report.md", render_markdown(decision, arms, meta, [(c, n) for c, n, _ in figures]))
    page = atomic_write_text(out / "report.html", render_html(decision, arms, meta, [(c, p) for c, _, p in figures]))
    return md, page
