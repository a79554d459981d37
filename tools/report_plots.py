"""The filter report's figures: one PNG per topic, thresholds drawn where the rules cut.

Figures are made with matplotlib's object API (``Figure``, no pyplot), so no global backend
is switched and nothing is shown; PNGs are saved without the software/date metadata, so the
same run gives the same bytes.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from tools.report_data import Histogram, ReportData, reason_family

STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "svg.hashsalt": "align",
}
KEPT = "#2a9d8f"
ALL = "#c9ced6"
THRESHOLD = "#b5179e"
FIRST = "#e76f51"
ANY = "#f4a261"
DPI = 110
MAX_LANGUAGES = 12


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG, without metadata that would change from run to run."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _thousands(value: float, _position=None) -> str:
    return f"{value:,.0f}"


def reason_colours(reasons: list[str]) -> dict[str, tuple]:
    palette = matplotlib.colormaps["tab20"].colors
    return {reason: palette[(2 * index) % 20] for index, reason in enumerate(reasons)}


def removed_per_rule(data: ReportData) -> Figure:
    """Top: where every input record went. Bottom: each rule's removals, first vs any."""
    reasons, total = data.reasons, max(data.stats["in"], 1)
    rows = max(len(reasons), 1)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 2.2 + 0.55 * rows), layout="constrained")
        top, bottom = figure.subplots(2, 1, height_ratios=[1, max(2, rows * 0.9)])
        colours = reason_colours(reasons)
        left = 0
        for label, count, colour in [("kept", data.stats["kept"], KEPT)] + [
            (reason, data.first[reason], colours[reason]) for reason in reasons
        ]:
            top.barh([0], [count], left=left, color=colour, label=label, height=0.6)
            left += count
        top.set_xlim(0, total)
        top.set_yticks([])
        top.grid(False)
        top.xaxis.set_major_formatter(FuncFormatter(_thousands))
        top.set_title(
            f"Kept {data.kept_fraction:.1%} of {data.stats['in']:,} records "
            "(rejections by first failing rule)"
        )
        if data.stats["kept"] / total > 0.12:
            top.text(data.stats["kept"] / 2, 0, f"kept {data.kept_fraction:.1%}", color="white",
                     ha="center", va="center", fontweight="bold")  # fmt: skip
        top.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncols=3, fontsize=9)

        positions = np.arange(len(reasons))
        firsts = [data.first[reason] for reason in reasons]
        anys = [max(data.any[reason], data.first[reason]) for reason in reasons]
        bottom.barh(positions - 0.2, anys, height=0.4, color=ANY, label="any failing rule")
        bottom.barh(positions + 0.2, firsts, height=0.4, color=FIRST, label="first failing rule")
        for position, first, any_ in zip(positions, firsts, anys, strict=True):
            bottom.text(any_, position - 0.2, f" {any_:,} ({any_ / total:.1%})", va="center")
            bottom.text(first, position + 0.2, f" {first:,} ({first / total:.1%})", va="center")
        bottom.set_yticks(positions, reasons)
        bottom.invert_yaxis()
        bottom.set_xlim(0, max(anys + [1]) * 1.3)
        bottom.xaxis.set_major_formatter(FuncFormatter(_thousands))
        bottom.set_xlabel("records removed")
        bottom.set_title("Records removed per rule")
        bottom.legend(loc="lower right")
    return figure


def _histogram(
    histogram: Histogram,
    title: str,
    xlabel: str,
    thresholds: list[tuple[float, str]],
    overflow_label: str,
) -> Figure:
    """Kept records stacked under rejected ones per bin, the rule's thresholds as lines."""
    edges = histogram.edges
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 4.2), layout="constrained")
        axes = figure.subplots()
        # One step patch per series (not a patch per bin): fast at any number of bins.
        axes.stairs(histogram.counts, edges, fill=True, color=ALL, label="rejected")
        axes.stairs(histogram.kept, edges, fill=True, color=KEPT, label="kept")
        if histogram.counts[-1]:
            axes.stairs(
                histogram.counts[-1:], edges[-2:], fill=True, facecolor="none", hatch="///",
                edgecolor="#6b7785", linewidth=0, label=overflow_label,
            )  # fmt: skip
        top = max(int(histogram.counts.max()), 1)
        for position, text in thresholds:
            axes.axvline(position, color=THRESHOLD, linestyle="--", linewidth=1.6)
            axes.text(
                position, top * 1.04, f" {text}", color=THRESHOLD, fontsize=10,
                ha="left", va="bottom", fontweight="bold",
            )  # fmt: skip
        axes.set_ylim(0, top * 1.15)
        axes.set_xlim(edges[0], edges[-1])
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
        axes.set_xlabel(xlabel)
        axes.set_ylabel("records")
        axes.set_title(title)
        axes.legend(loc="upper right", bbox_to_anchor=(1.0, 0.93))
    return figure


def alt_length(data: ReportData) -> Figure:
    config = data.stats.get("config", {})
    low, high = int(config.get("min_unigrams", 3)), int(config.get("max_unigrams", 20))
    top = int(data.alt_length.edges[-2] + 0.5)
    return _histogram(
        data.alt_length,
        "Alt-text length",
        "unigrams in the alt-text",
        [(low - 0.5, f"min {low}"), (high + 0.5, f"max {high}")],
        f"{top} or more",
    )


def shorter_side(data: ReportData) -> Figure:
    threshold = int(data.stats.get("config", {}).get("min_shorter_side", 200))
    top = int(data.shorter_side.edges[-2])
    return _histogram(
        data.shorter_side,
        "Image shorter side (as served)",
        "shorter side (pixels)",
        [(threshold + 0.5, f"keep > {threshold} px")],
        f"{top} px or more",
    )


def aspect(data: ReportData) -> Figure:
    threshold = float(data.stats.get("config", {}).get("max_aspect_ratio", 3.0))
    top = data.aspect.edges[-2]
    return _histogram(
        data.aspect,
        "Image aspect ratio",
        "longer side / shorter side",
        [(threshold, f"keep < {threshold:g}")],
        f"{top:g} or more",
    )


def languages(data: ReportData) -> Figure:
    accepted = data.stats.get("config", {}).get("languages", [])
    accepted = set(accepted) if isinstance(accepted, list) else set()
    ranked = sorted(data.languages.items(), key=lambda item: (-item[1], item[0]))
    shown = ranked[:MAX_LANGUAGES]
    rest = sum(count for _, count in ranked[MAX_LANGUAGES:])
    if rest:
        shown.append((f"{len(ranked) - MAX_LANGUAGES} others", rest))
    total = max(sum(data.languages.values()), 1)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 1.4 + 0.35 * len(shown)), layout="constrained")
        axes = figure.subplots()
        names = [name for name, _ in shown]
        counts = [count for _, count in shown]
        colours = [KEPT if name in accepted else ALL for name in names]
        axes.barh(names, counts, color=colours, height=0.6)
        for position, count in enumerate(counts):
            axes.text(count, position, f" {count:,} ({count / total:.1%})", va="center")
        axes.set_xlim(0, max(counts + [1]) * 1.25)
        axes.xaxis.set_major_formatter(FuncFormatter(_thousands))
        axes.set_xlabel("records")
        wanted = ", ".join(sorted(accepted)) if accepted else "all languages"
        axes.set_title(f"Detected alt-text language (green: accepted, {wanted})")
        axes.set_ylim(len(shown) - 0.4, -0.6)
    return figure


def rule_quality(data: ReportData) -> Figure:
    order = {reason_family(reason): index for index, reason in enumerate(reversed(data.reasons))}
    rules = sorted(data.ground_truth.rules, key=lambda rule: -order.get(rule.rule, -1))
    positions = np.arange(len(rules))
    precision = [rule.precision or 0.0 for rule in rules]
    recall = [rule.recall or 0.0 for rule in rules]
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 1.8 + 0.6 * max(len(rules), 1)), layout="constrained")
        axes = figure.subplots()
        axes.barh(positions - 0.2, precision, height=0.4, color="#457b9d", label="precision")
        axes.barh(positions + 0.2, recall, height=0.4, color="#e9c46a", label="recall")
        for position, rule in zip(positions, rules, strict=True):
            for offset, value in ((-0.2, rule.precision), (0.2, rule.recall)):
                text = "n/a" if value is None else f"{value:.2f}"
                axes.text((value or 0.0) + 0.01, position + offset, text, va="center", fontsize=9)
        axes.set_yticks(positions, [f"{rule.rule}\n({rule.label})" for rule in rules], fontsize=9)
        axes.invert_yaxis()
        axes.set_xlim(0, 1.1)
        axes.set_xlabel("precision: flagged records that carry the label; recall: the reverse")
        axes.set_title("Each rule against the noise it targets (ground truth)")
        figure.legend(loc="outside upper right", ncols=2)
    return figure


def all_figures(data: ReportData) -> dict[str, Figure]:
    """The report's figures by file name, in the order the report shows them."""
    figures = {"removed_per_rule.png": removed_per_rule(data)}
    if data.ground_truth is not None and data.ground_truth.rules:
        figures["rule_quality.png"] = rule_quality(data)
    if data.alt_length.total:
        figures["alt_length.png"] = alt_length(data)
    if data.has_images:
        figures["shorter_side.png"] = shorter_side(data)
        figures["aspect_ratio.png"] = aspect(data)
    if data.languages:
        figures["languages.png"] = languages(data)
    return figures
