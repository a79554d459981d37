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
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from pipeline.report.gather import Histogram, ReportData, rule_of

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


def rule_groups(data: ReportData) -> dict[str, list[str]]:
    """The run's reasons grouped by the rule that gives them, in the order rules ran."""
    groups: dict[str, list[str]] = {}
    for reason in data.reasons:
        groups.setdefault(rule_of(reason), []).append(reason)
    return groups


def removed_per_rule(data: ReportData) -> Figure:
    """Top: where every input record went, by rule. Bottom: each reason, first vs any."""
    reasons, total = data.reasons, max(data.stats["in"], 1)
    groups = rule_groups(data)
    palette = matplotlib.colormaps["tab10"].colors
    colour_of = {rule: palette[index % 10] for index, rule in enumerate(groups)}
    rows = max(len(reasons), 1)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 2.6 + 0.5 * rows), layout="constrained")
        top, bottom = figure.subplots(2, 1, height_ratios=[1.3, max(2, rows * 0.8)])
        segments = [("kept", data.stats["kept"], KEPT)] + [
            (rule, sum(data.first[reason] for reason in group), colour_of[rule])
            for rule, group in groups.items()
        ]
        left = 0
        for label, count, colour in segments:
            top.barh([0], [count], left=left, color=colour, label=label, height=0.6)
            left += count
        if data.stats["kept"] / total > 0.12:
            top.text(data.stats["kept"] / 2, 0, f"kept {data.kept_fraction:.1%}", color="white",
                     ha="center", va="center", fontweight="bold")  # fmt: skip
        top.set_xlim(0, total)
        top.set_yticks([])
        top.grid(False)
        top.xaxis.set_major_formatter(FuncFormatter(_thousands))
        top.set_title(f"Kept {data.kept_fraction:.1%} of {data.stats['in']:,} records")
        top.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=4, fontsize=9,
                   title="removed by the first rule they failed", title_fontsize=9)  # fmt: skip

        positions = np.arange(len(reasons))
        colours = [colour_of[rule_of(reason)] for reason in reasons]
        firsts = [data.first[reason] for reason in reasons]
        anys = [max(data.any[reason], data.first[reason]) for reason in reasons]
        bottom.barh(positions - 0.2, anys, height=0.4, color=colours, alpha=0.4)
        bottom.barh(positions + 0.2, firsts, height=0.4, color=colours)
        for position, first, any_ in zip(positions, firsts, anys, strict=True):
            bottom.text(any_, position - 0.2, f" {any_:,} ({any_ / total:.1%})", va="center",
                        fontsize=9)  # fmt: skip
            bottom.text(first, position + 0.2, f" {first:,} ({first / total:.1%})", va="center",
                        fontsize=9)  # fmt: skip
        bottom.set_yticks(positions, reasons)
        bottom.invert_yaxis()
        bottom.set_xlim(0, max(anys + [1]) * 1.3)
        bottom.xaxis.set_major_formatter(FuncFormatter(_thousands))
        bottom.set_xlabel("records removed")
        bottom.set_title("Records removed per reason")
        bottom.legend(
            handles=[Patch(color="#555555", alpha=0.4), Patch(color="#555555")],
            labels=["failing it at all (upper bar)", "failing it first (lower bar)"],
            loc="lower right",
        )
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
        if data.languages_unmeasured:
            axes.set_xlabel(
                f"records (of {total:,} the language rule ran on; "
                f"{data.languages_unmeasured:,} were rejected before it)"
            )
        axes.set_ylim(len(shown) - 0.4, -0.6)
    return figure


QUALITY_SERIES = [
    ("precision", "precision", "#1d3557"),
    ("precision_any_noise", "precision (any noise counts)", "#8ab6d6"),
    ("recall", "recall", "#e9c46a"),
]


def rule_quality(data: ReportData) -> Figure:
    """Per rule: precision (own label, any noise) and recall against the ground truth."""
    rules = data.ground_truth.rules
    positions = np.arange(len(rules))
    height = 0.8 / len(QUALITY_SERIES)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(9, 1.8 + 0.75 * max(len(rules), 1)), layout="constrained")
        axes = figure.subplots()
        for index, (attribute, label, colour) in enumerate(QUALITY_SERIES):
            offsets = positions + (index - 1) * height
            values = [getattr(rule, attribute) for rule in rules]
            axes.barh(offsets, [v or 0.0 for v in values], height=height, color=colour, label=label)
            for offset, value in zip(offsets, values, strict=True):
                text = "n/a" if value is None else f"{value:.2f}"
                axes.text((value or 0.0) + 0.01, offset, text, va="center", fontsize=8)
        axes.set_yticks(positions, [f"{rule.rule}\n({rule.label})" for rule in rules], fontsize=9)
        axes.invert_yaxis()
        axes.set_xlim(0, 1.1)
        axes.set_xlabel("fraction of the records the rule could judge")
        axes.set_title("Each rule against the noise it targets (ground truth)")
        figure.legend(loc="outside upper center", ncols=3, fontsize=9)
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
