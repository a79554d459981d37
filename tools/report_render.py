"""The filter report as Markdown (thumbnails beside it) and as one self-contained HTML page."""

from __future__ import annotations

import base64
import html

from tools.report_data import ReportData

TEXT_LIMIT = 120
QUALITY_HEADER = [
    "reason", "targets", "judged", "flagged", "labelled", "both", "precision", "recall",
    "removed by any rule",
]  # fmt: skip
QUALITY_NOTE = (
    "Precision and recall count the records a rule could judge (language: those it ran on, "
    "as it runs last; image rules: downloaded images); a rule flags a record when it fails "
    "at all, first or not. 'Removed by any rule' is the share of all records carrying the "
    "label that the whole filter removed."
)
FIGURE_TITLES = {
    "removed_per_rule.png": "Records removed per rule",
    "rule_quality.png": "Rules against the ground truth",
    "alt_length.png": "Alt-text length",
    "shorter_side.png": "Image shorter side",
    "aspect_ratio.png": "Image aspect ratio",
    "languages.png": "Languages",
}


def _short(text: str | None, limit: int = TEXT_LIMIT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def notes(data: ReportData) -> list[str]:
    """Facts about the run a reader must not miss (plain text)."""
    stats, lines = data.stats, []
    if not stats.get("nsfw_applied", False):
        lines.append(
            "NSFW rule not applied: no classifier was given, NSFW images were not removed."
        )
    if not stats.get("balanced", True):
        lines.append("stats.json does not balance: in != kept + rejected. The run lost records.")
    if data.rows != stats.get("in"):
        lines.append(f"measurements hold {data.rows:,} rows but stats.json counts {stats['in']:,}.")
    if data.frequent_error:
        lines.append(
            f"Most-frequent counts are approximate (may be up to {data.frequent_error:,} low)."
        )
    return lines


def summary_rows(data: ReportData) -> list[list[str]]:
    stats = data.stats
    rejected = sum(stats.get("rejected", {}).values())
    return [
        ["records in", f"{stats['in']:,}"],
        ["kept", f"{stats['kept']:,} ({_percent(stats['kept'], stats['in'])})"],
        ["rejected", f"{rejected:,} ({_percent(rejected, stats['in'])})"],
        ["balanced", "yes" if stats.get("balanced") else "NO"],
        ["mode", str(stats.get("mode", "?"))],
        ["rules applied", ", ".join(stats.get("rules", [])) or "none"],
        ["NSFW rule", "applied" if stats.get("nsfw_applied") else "not applied"],
        [
            "evaluation sets",
            ", ".join(f"{name} ({n:,} images)" for name, n in stats.get("eval_sets", {}).items())
            or "none",
        ],
        ["input", str(stats.get("input", "?"))],
    ]


def rule_rows(data: ReportData) -> list[list[str]]:
    total = data.stats["in"]
    return [
        [
            reason,
            f"{data.first[reason]:,}",
            _percent(data.first[reason], total),
            f"{data.any[reason]:,}",
            _percent(data.any[reason], total),
        ]
        for reason in data.reasons
    ]


def quality_rows(data: ReportData) -> list[list[str]]:
    return [
        [
            rule.rule,
            rule.label,
            f"{rule.judged:,}",
            f"{rule.flagged:,}",
            f"{rule.labelled:,}",
            f"{rule.both:,}",
            _ratio(rule.precision),
            _ratio(rule.recall),
            _ratio(rule.removed_fraction),
        ]
        for rule in data.ground_truth.rules
    ]


def untargeted_rows(data: ReportData) -> list[list[str]]:
    return [
        [label.label, f"{label.labelled:,}", f"{label.kept:,}"]
        for label in data.ground_truth.untargeted
    ]


def language_rows(data: ReportData) -> list[list[str]]:
    total = sum(data.languages.values())
    ranked = sorted(data.languages.items(), key=lambda item: (-item[1], item[0]))[:20]
    return [[name, f"{count:,}", _percent(count, total)] for name, count in ranked]


def _image_label(data: ReportData, key: str) -> str:
    return f"sha256 {key[:12]}…" if data.image_key == "sha256" else key


# --- Markdown ---------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    """Text as one table cell: no HTML, no pipes, no links or images of its own."""
    text = html.escape(_short(text), quote=False)
    for char in "\\|`[]*":
        text = text.replace(char, "\\" + char)
    return text or " "


def _md_table(header: list[str], rows: list[list[str]], raw: frozenset = frozenset()) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(c if i in raw else _md_cell(c) for i, c in enumerate(row)) + " |"
        for row in rows
    ]
    return lines + [""]


def _md_thumb(data: ReportData, uid: str) -> str:
    return f"![{uid}](thumbs/{uid}.jpg)" if uid in data.thumbnails else " "


def markdown(data: ReportData, figures: list[str], title: str) -> str:
    lines = [f"# Filter report: {title}", ""]
    lines += [f"> **{note}**" for note in notes(data)] + [""] * bool(notes(data))
    lines += _md_table(["", ""], summary_rows(data))
    lines += ["## Records removed per rule", ""]
    lines += _md_table(
        ["reason", "first failing", "% of in", "any failing", "% of in"], rule_rows(data)
    )
    lines += _md_figures(figures, ["removed_per_rule.png"])
    if data.ground_truth is not None:
        lines += ["## Rules against the ground truth", ""]
        lines += [
            f"Joined on ({', '.join(data.ground_truth.keys)}): "
            f"{data.ground_truth.matched:,} records matched, "
            f"{data.ground_truth.unmatched:,} not in the ground truth. {QUALITY_NOTE}",
            "",
        ]
        header = QUALITY_HEADER
        lines += _md_table(header, quality_rows(data))
        if data.ground_truth.untargeted:
            lines += ["Noise no rule targets (how much of it was kept):", ""]
            lines += _md_table(["label", "labelled", "kept"], untargeted_rows(data))
        lines += _md_figures(figures, ["rule_quality.png"])
    lines += ["## Distributions", ""]
    lines += _md_figures(figures, ["alt_length.png", "shorter_side.png", "aspect_ratio.png"])
    if data.languages:
        lines += ["## Languages", ""] + _md_table(["language", "records", "%"], language_rows(data))
        lines += _md_figures(figures, ["languages.png"])
    lines += [f"## The {len(data.top_alts)} most frequent alt-texts", ""]
    lines += _md_table(
        ["#", "alt-text", "records", "kept"],
        [[str(i + 1), e.key, f"{e.count:,}", f"{e.kept:,}"] for i, e in enumerate(data.top_alts)],
    )
    lines += [f"## The {len(data.top_images)} most frequent images", ""]
    rows = [
        [str(i + 1), _md_thumb(data, e.example_uid), _image_label(data, e.key), f"{e.count:,}",
         f"{e.kept:,}", e.example_alt or ""]
        for i, e in enumerate(data.top_images)
    ]  # fmt: skip
    lines += _md_table(["#", "image", "key", "records", "kept", "an alt-text"], rows, {1})
    lines += ["## Rejected examples per rule", ""]
    for reason in data.reasons:
        lines += [f"### {reason}", ""]
        rows = [
            [_md_thumb(data, row["uid"]), row["alt"], row["url"], ", ".join(row["reasons"] or []),
             ", ".join(row["measured"] or [])]
            for row in data.examples.get(reason, [])
        ]  # fmt: skip
        if rows:
            lines += _md_table(["image", "alt-text", "url", "reasons", "measured"], rows, {0})
        else:
            lines += ["(no example)", ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_figures(figures: list[str], names: list[str]) -> list[str]:
    lines = []
    for name in names:
        if name in figures:
            lines += [f"![{FIGURE_TITLES[name]}]({name})", ""]
    return lines


# --- HTML -------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#1d2731;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #dde2e8;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0 1.2em}
td,th{border:1px solid #dde2e8;padding:.3em .6em;vertical-align:top;text-align:left}
th{background:#f3f5f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{background:#fff4e5;border-left:4px solid #f4a261;padding:.5em 1em;margin:.5em 0}
img.fig{max-width:100%;display:block;margin:.5em 0 1.5em}
img.thumb{max-width:128px;max-height:128px}.muted{color:#6b7785}
code{font-size:.9em;word-break:break-all}
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _cell(value: str) -> str:
    numeric = value.replace(",", "").replace("%", "").replace(".", "", 1).isdigit()
    return (
        f'<td class="n">{html.escape(value)}</td>' if numeric else f"<td>{html.escape(value)}</td>"
    )


def _html_table(header: list[str], rows: list[list[str]], raw: frozenset = frozenset()) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{cell}</td>" if i in raw else _cell(cell) for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_thumb(data: ReportData, uid: str) -> str:
    if uid not in data.thumbnails:
        return '<span class="muted">no image</span>'
    return f'<img class="thumb" alt="{uid}" src="{_data_uri(data.thumbnails[uid], "image/jpeg")}">'


def _html_figure(pngs: dict[str, bytes], name: str) -> str:
    if name not in pngs:
        return ""
    uri = _data_uri(pngs[name], "image/png")
    return f'<img class="fig" alt="{html.escape(FIGURE_TITLES[name])}" src="{uri}">'


def html_page(data: ReportData, pngs: dict[str, bytes], title: str) -> str:
    parts = [f"<h1>Filter report: {html.escape(title)}</h1>"]
    parts += [f'<p class="note"><b>{html.escape(note)}</b></p>' for note in notes(data)]
    parts.append(_html_table(["", ""], summary_rows(data)))
    parts.append("<h2>Records removed per rule</h2>")
    parts.append(
        _html_table(
            ["reason", "first failing", "% of in", "any failing", "% of in"], rule_rows(data)
        )
    )
    parts.append(_html_figure(pngs, "removed_per_rule.png"))
    if data.ground_truth is not None:
        parts.append("<h2>Rules against the ground truth</h2>")
        parts.append(
            f"<p>Joined on ({', '.join(data.ground_truth.keys)}): "
            f"{data.ground_truth.matched:,} records matched, "
            f"{data.ground_truth.unmatched:,} not in the ground truth. "
            f"{html.escape(QUALITY_NOTE)}</p>"
        )
        header = QUALITY_HEADER
        parts.append(_html_table(header, quality_rows(data)))
        if data.ground_truth.untargeted:
            parts.append("<p>Noise no rule targets (how much of it was kept):</p>")
            parts.append(_html_table(["label", "labelled", "kept"], untargeted_rows(data)))
        parts.append(_html_figure(pngs, "rule_quality.png"))
    parts.append("<h2>Distributions</h2>")
    parts += [_html_figure(pngs, name) for name in ("alt_length.png", "shorter_side.png")]
    parts.append(_html_figure(pngs, "aspect_ratio.png"))
    if data.languages:
        parts.append("<h2>Languages</h2>")
        parts.append(_html_table(["language", "records", "%"], language_rows(data)))
        parts.append(_html_figure(pngs, "languages.png"))
    parts.append(f"<h2>The {len(data.top_alts)} most frequent alt-texts</h2>")
    rows = [
        [str(i + 1), _short(e.key), f"{e.count:,}", f"{e.kept:,}"]
        for i, e in enumerate(data.top_alts)
    ]
    parts.append(_html_table(["#", "alt-text", "records", "kept"], rows))
    parts.append(f"<h2>The {len(data.top_images)} most frequent images</h2>")
    rows = [
        [str(i + 1), _html_thumb(data, e.example_uid), _image_label(data, e.key), f"{e.count:,}",
         f"{e.kept:,}", _short(e.example_alt)]
        for i, e in enumerate(data.top_images)
    ]  # fmt: skip
    parts.append(_html_table(["#", "image", "key", "records", "kept", "an alt-text"], rows, {1}))
    parts.append("<h2>Rejected examples per rule</h2>")
    for reason in data.reasons:
        parts.append(f"<h3>{html.escape(reason)}</h3>")
        rows = [
            [_html_thumb(data, row["uid"]), _short(row["alt"]), _short(row["url"]),
             ", ".join(row["reasons"] or []), ", ".join(row["measured"] or [])]
            for row in data.examples.get(reason, [])
        ]  # fmt: skip
        header = ["image", "alt-text", "url", "reasons", "measured"]
        parts.append(_html_table(header, rows, {0}) if rows else "<p>(no example)</p>")
    body = "\n".join(part for part in parts if part)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Filter report: {html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
