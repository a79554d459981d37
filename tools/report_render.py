"""The filter report as Markdown (thumbnails beside it) and as one self-contained HTML page.

The report is built once as a list of blocks (headings, paragraphs, tables, figures), then
written by two small renderers, so both formats always say the same thing.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

from tools.report_data import ReportData

TEXT_LIMIT = 120
FIGURE_TITLES = {
    "removed_per_rule.png": "Records removed per rule",
    "rule_quality.png": "Rules against the ground truth",
    "alt_length.png": "Alt-text length",
    "shorter_side.png": "Image shorter side",
    "aspect_ratio.png": "Image aspect ratio",
    "languages.png": "Languages",
}
QUALITY_HEADER = [
    "reason", "targets", "judged", "flagged", "labelled", "both", "precision",
    "precision (any noise)", "recall", "removed by any rule",
]  # fmt: skip
QUALITY_NOTE = (
    "Precision and recall count the records a rule could judge (language: those it ran on, "
    "as it runs last; image rules: downloaded images); a rule flags a record when it fails "
    "at all, first or not. 'Precision (any noise)' also counts as right a flagged record "
    "that carries another noise label. 'Removed by any rule' is the share of all records "
    "carrying the label that the whole filter removed."
)


@dataclass(frozen=True)
class Thumb:
    """A table cell showing the thumbnail of a record's image (or that there is none)."""

    uid: str


@dataclass(frozen=True)
class Block:
    kind: str  # "h1", "h2", "h3", "p", "note", "table", "figure"
    text: str = ""
    header: tuple = ()
    rows: tuple = ()


def _short(text: str | None, limit: int = TEXT_LIMIT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list]) -> Block:
    return Block("table", header=tuple(header), rows=tuple(tuple(row) for row in rows))


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


def _summary(data: ReportData, more_notes: Sequence[str]) -> list[Block]:
    stats = data.stats
    rejected = sum(stats.get("rejected", {}).values())
    eval_sets = ", ".join(
        f"{name} ({n:,} images)" for name, n in stats.get("eval_sets", {}).items()
    )
    rows = [
        ["records in", f"{stats['in']:,}"],
        ["kept", f"{stats['kept']:,} ({_percent(stats['kept'], stats['in'])})"],
        ["rejected", f"{rejected:,} ({_percent(rejected, stats['in'])})"],
        ["balanced", "yes" if stats.get("balanced") else "NO"],
        ["mode", str(stats.get("mode", "?"))],
        ["rules applied", ", ".join(stats.get("rules", [])) or "none"],
        ["NSFW rule", "applied" if stats.get("nsfw_applied") else "not applied"],
        ["evaluation sets", eval_sets or "none"],
        ["input", str(stats.get("input", "?"))],
    ]
    all_notes = notes(data) + list(more_notes)
    return [Block("note", note) for note in all_notes] + [_table(["", ""], rows)]


def _removed(data: ReportData) -> list[Block]:
    total = data.stats["in"]
    rows = [
        [reason, f"{data.first[reason]:,}", _percent(data.first[reason], total),
         f"{data.any[reason]:,}", _percent(data.any[reason], total)]
        for reason in data.reasons
    ]  # fmt: skip
    return [
        Block("h2", "Records removed per rule"),
        Block(
            "p",
            "Each rejected record counts once under the first rule it failed, and under "
            "every rule it failed in 'any failing'.",
        ),  # fmt: skip
        _table(["reason", "first failing", "% of in", "any failing", "% of in"], rows),
        Block("figure", "removed_per_rule.png"),
    ]


def _ground_truth(data: ReportData) -> list[Block]:
    truth = data.ground_truth
    if truth is None:
        return []
    rows = [
        [rule.rule, rule.label, f"{rule.judged:,}", f"{rule.flagged:,}", f"{rule.labelled:,}",
         f"{rule.both:,}", _ratio(rule.precision), _ratio(rule.precision_any_noise),
         _ratio(rule.recall), _ratio(rule.removed_fraction)]
        for rule in truth.rules
    ]  # fmt: skip
    blocks = [
        Block("h2", "Rules against the ground truth"),
        Block(
            "p",
            f"Joined on ({', '.join(truth.keys)}): {truth.matched:,} records matched, "
            f"{truth.unmatched:,} not in the ground truth. {QUALITY_NOTE}",
        ),
        _table(QUALITY_HEADER, rows),
    ]
    if truth.untargeted:
        rows = [
            [label.label, f"{label.labelled:,}", f"{label.kept:,}"] for label in truth.untargeted
        ]
        blocks += [Block("p", "Noise no rule targets, and how much of it was kept:")]
        blocks += [_table(["label", "labelled", "kept"], rows)]
    return blocks + [Block("figure", "rule_quality.png")]


def _distributions(data: ReportData) -> list[Block]:
    blocks = [Block("h2", "Distributions")]
    blocks += [Block("figure", name) for name in ("alt_length.png", "shorter_side.png")]
    blocks += [Block("figure", "aspect_ratio.png")]
    if not data.languages and not data.languages_unmeasured:
        return blocks
    total = sum(data.languages.values())
    ranked = sorted(data.languages.items(), key=lambda item: (-item[1], item[0]))[:20]
    blocks += [Block("h2", "Languages")]
    if data.languages_unmeasured:
        blocks += [
            Block(
                "p",
                f"{data.languages_unmeasured:,} records were rejected before language "
                "detection (it runs last) and are not counted here.",
            )  # fmt: skip
        ]
    rows = [[name, f"{count:,}", _percent(count, total)] for name, count in ranked]
    return blocks + [_table(["language", "records", "%"], rows), Block("figure", "languages.png")]


def _frequent(data: ReportData) -> list[Block]:
    blocks = [Block("h2", "Most frequent alt-texts")]
    if data.top_alts:
        blocks += [Block("p", "Alt-texts shared by two or more records, the most frequent first.")]
        rows = [
            [str(i + 1), e.key, f"{e.count:,}", f"{e.kept:,}"] for i, e in enumerate(data.top_alts)
        ]
        blocks += [_table(["#", "alt-text", "records", "kept"], rows)]
    else:
        blocks += [Block("p", "No alt-text appears more than once.")]
    blocks += [Block("h2", "Most frequent images")]
    what = "content (sha256)" if data.image_key == "sha256" else "URL, as nothing is downloaded yet"
    if data.top_images:
        blocks += [Block("p", f"Images of two or more records, the same by {what}.")]
        rows = [
            [str(i + 1), Thumb(e.example_uid), _image_label(data, e.key), f"{e.count:,}",
             f"{e.kept:,}", e.example_alt or ""]
            for i, e in enumerate(data.top_images)
        ]  # fmt: skip
        blocks += [_table(["#", "image", "key", "records", "kept", "an alt-text"], rows)]
    else:
        blocks += [Block("p", f"No image appears more than once, the same by {what}.")]
    return blocks


def _image_label(data: ReportData, key: str) -> str:
    return f"sha256 {key[:12]}…" if data.image_key == "sha256" else key


def _examples(data: ReportData) -> list[Block]:
    blocks = [Block("h2", "Rejected examples per rule")]
    for reason in data.reasons:
        rows = [
            [Thumb(row["uid"]), row["alt"], row["url"], ", ".join(row["reasons"] or []),
             ", ".join(row["measured"] or [])]
            for row in data.examples.get(reason, [])
        ]  # fmt: skip
        blocks += [Block("h3", reason)]
        header = ["image", "alt-text", "url", "reasons", "measured"]
        blocks += [_table(header, rows) if rows else Block("p", "(no example)")]
    return blocks


def document(data: ReportData, title: str, more_notes: Sequence[str] = ()) -> list[Block]:
    """The whole report, in reading order; ``more_notes`` are the writer's (e.g. no plots)."""
    return (
        [Block("h1", f"Filter report: {title}")]
        + _summary(data, more_notes)
        + _removed(data)
        + _ground_truth(data)
        + _distributions(data)
        + _frequent(data)
        + _examples(data)
    )


# --- Markdown ---------------------------------------------------------------------------


def _md_cell(cell, data: ReportData) -> str:
    """One table cell: thumbnails as images, text with no HTML, pipes, links of its own."""
    if isinstance(cell, Thumb):
        return f"![{cell.uid}](thumbs/{cell.uid}.jpg)" if cell.uid in data.thumbnails else " "
    text = html.escape(_short(cell), quote=False)
    for char in "\\|`[]*":
        text = text.replace(char, "\\" + char)
    return text or " "


def markdown(
    data: ReportData, figures: list[str], title: str, more_notes: Sequence[str] = ()
) -> str:
    lines: list[str] = []
    for block in document(data, title, more_notes):
        if block.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(block.kind[1]) + " " + block.text, ""]
        elif block.kind in ("p", "note"):
            text = html.escape(block.text, quote=False)
            lines += [f"> **{text}**" if block.kind == "note" else text, ""]
        elif block.kind == "figure" and block.text in figures:
            lines += [f"![{FIGURE_TITLES[block.text]}]({block.text})", ""]
        elif block.kind == "table":
            lines += ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
            lines += [
                "| " + " | ".join(_md_cell(c, data) for c in row) + " |" for row in block.rows
            ]
            lines += [""]
    return "\n".join(lines).rstrip() + "\n"


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
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _html_cell(cell, data: ReportData) -> str:
    if isinstance(cell, Thumb):
        if cell.uid not in data.thumbnails:
            return '<td><span class="muted">no image</span></td>'
        uri = _data_uri(data.thumbnails[cell.uid], "image/jpeg")
        return f'<td><img class="thumb" alt="{cell.uid}" src="{uri}"></td>'
    text = _short(cell)
    numeric = text.replace(",", "").replace("%", "").replace(".", "", 1).isdigit()
    return f'<td class="n">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def _html_block(block: Block, data: ReportData, pngs: dict[str, bytes]) -> str:
    if block.kind in ("h1", "h2", "h3"):
        return f"<{block.kind}>{html.escape(block.text)}</{block.kind}>"
    if block.kind == "p":
        return f"<p>{html.escape(block.text)}</p>"
    if block.kind == "note":
        return f'<p class="note"><b>{html.escape(block.text)}</b></p>'
    if block.kind == "figure":
        if block.text not in pngs:
            return ""
        uri = _data_uri(pngs[block.text], "image/png")
        return f'<img class="fig" alt="{html.escape(FIGURE_TITLES[block.text])}" src="{uri}">'
    head = "".join(f"<th>{html.escape(name)}</th>" for name in block.header)
    body = "".join(
        "<tr>" + "".join(_html_cell(cell, data) for cell in row) + "</tr>" for row in block.rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(
    data: ReportData, pngs: dict[str, bytes], title: str, more_notes: Sequence[str] = ()
) -> str:
    """One HTML file with the plots and thumbnails embedded: it can be mailed or archived."""
    parts = [_html_block(block, data, pngs) for block in document(data, title, more_notes)]
    body = "\n".join(part for part in parts if part)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Filter report: {html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
