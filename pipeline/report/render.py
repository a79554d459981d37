"""The filter report as Markdown (thumbnails beside it) and as one self-contained HTML page.

The report is built once as a list of blocks (headings, paragraphs, facts, tables, example
cards, figures), then written by two small renderers, so both formats always say the same
thing. The HTML fits a column of 1000 to 1400 px without scrolling sideways: long URLs and
identifiers break at their separators, examples are cards rather than wide tables.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest

from filters.rule import GIVEN_BY
from pipeline.report.gather import DOWNLOAD_RULE, ReportData, rule_of
from pipeline.report.truth import RuleQuality, reason_family

TEXT_LIMIT = 160
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
    "'Targets' is the ground truth's noise_* label a rule is meant to remove. Precision "
    "and recall count the records a rule could judge (language: those it ran on, "
    "as it runs last; image rules: downloaded images); a rule flags a record when it fails "
    "at all, first or not. 'Precision (any noise)' also counts as right a flagged record "
    "that carries another noise label. 'Removed by any rule' is the share of all records "
    "carrying the label that the whole curation removed."
)


@dataclass(frozen=True)
class Thumb:
    """A table cell showing the thumbnail of a record's image (or nothing, if it has none)."""

    uid: str


@dataclass(frozen=True)
class Block:
    # "h1", "h2", "h3", "p", "note", "facts" (label, value rows), "table", "figure",
    # "cards" (example records; text is their caption), "beside" (child blocks side by side)
    kind: str
    text: str = ""
    header: tuple = ()
    rows: tuple = ()
    dense: bool = False  # a table of many narrow columns, set in a smaller type


def _short(text: str | None, limit: int = TEXT_LIMIT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _table(
    header: list[str], rows: list[list], data: ReportData | None = None, dense: bool = False
) -> Block:
    """A table; a thumbnail column none of whose records has an image is left out."""
    columns = range(len(header))
    if data is not None:
        columns = [
            index
            for index in columns
            if not all(isinstance(row[index], Thumb) for row in rows)
            or any(row[index].uid in data.thumbnails for row in rows)
        ]
    return Block(
        "table",
        header=tuple(header[index] for index in columns),
        rows=tuple(tuple(row[index] for index in columns) for row in rows),
        dense=dense,
    )


def _is_download(reason: str) -> bool:
    return rule_of(reason) == DOWNLOAD_RULE


def notes(data: ReportData) -> list[str]:
    """Facts about the run a reader must not miss (plain text)."""
    stats, lines = data.stats, []
    for rule in data.unapplied_rules:
        lines.append(
            f"Rule '{rule.name}' not applied: it runs only with {GIVEN_BY[rule.needs]}, so no "
            f"record was judged on {rule.measures}."
        )
    lines += data.curation.all_notes()
    if not stats.get("balanced", True):
        lines.append(
            "The counts do not balance: in != kept + rejected (a run lost records, or the runs "
            "do not follow each other)."
        )
    for run in data.curation.filter_runs:
        read = data.rows_read.get(run.folder, 0)
        if read != measured_records(run.stats):
            lines.append(
                f"{run.label}/measurements hold {read:,} rows but its stats.json counts "
                f"{run.stats.get('in', 0):,}."
            )
    if data.frequent_error:
        lines.append(
            f"Most-frequent counts are approximate (may be up to {data.frequent_error:,} low)."
        )
    return lines


def measured_records(stats: dict) -> int:
    """The measurement rows a filter run leaves: one per record in, less those its --opt-out
    list dropped before any rule and those align-purge removed since."""
    gone = sum(
        n for reason, n in stats.get("rejected", {}).items()
        if reason.startswith("opt_out_") or reason == "purged"
    )  # fmt: skip
    return int(stats.get("in", 0)) - gone


def _consent(data: ReportData) -> list[Block]:
    """Per signal, what each job left out, and the purges since."""
    if not data.consent and not data.purges:
        return []
    blocks = [
        Block("h2", "Consent: reservations honoured and records purged"),
        Block(
            "p",
            "Every machine-readable reservation the curation met, by the job that honoured it: "
            "pages (a reserved page's pairs never leave the crawl), images and pairs. A "
            "page refused by its X-Robots-Tag while fetched is never read, so its pairs are "
            "not known. opt_out_* rows are the --opt-out lists' matches, by kind.",
        ),
    ]
    if data.consent:
        labelled = any(row.labelled is not None for row in data.consent)
        header = ["signal", "run", "pages", "images", "pairs"] + ["labelled"] * labelled

        def cell(value):
            return "n/a" if value is None else f"{value:,}"

        rows = [
            [row.signal, f"{row.run}/ ({row.job})", cell(row.pages), cell(row.images),
             cell(row.pairs)] + [cell(row.labelled)] * labelled
            for row in data.consent
        ]  # fmt: skip
        blocks.append(_table(header, rows))
        if labelled:
            blocks.append(Block("p", "'Labelled': the pairs the ground truth reserves so."))
    if data.purges:
        rows = [
            [f"{row.run}/", row.when, row.list_path, ", ".join(
                f"{reason} {n:,}" for reason, n in row.removed.items()), f"{row.files:,}"]
            for row in data.purges
        ]  # fmt: skip
        blocks.append(Block("p", "align-purge runs since (each run's purge-*.json):"))
        blocks.append(_table(["run", "when", "list", "removed", "files rewritten"], rows))
    return blocks


def _summary(data: ReportData, more_notes: Sequence[str]) -> list[Block]:
    stats = data.stats
    rejected = sum(stats.get("rejected", {}).values())
    first = data.curation.filter_runs[0]
    facts = [
        ["records in", f"{stats['in']:,} (read by {first.label}/)"],
        ["kept", f"{stats['kept']:,} ({_percent(stats['kept'], stats['in'])})"],
        ["rejected", f"{rejected:,} ({_percent(rejected, stats['in'])})"],
        ["balanced", "yes" if stats.get("balanced") else "NO"],
    ]
    if stats.get("mode") == "all":
        eval_sets = ", ".join(
            f"{name} ({n:,} images)" for name, n in stats.get("eval_sets", {}).items()
        )
        facts += [["evaluation sets", eval_sets or "none"]]
        facts += [["NSFW rule", "applied" if stats.get("nsfw_applied") else "not applied"]]
    all_notes = notes(data) + list(more_notes)
    return (
        [Block("note", note) for note in all_notes]
        + [Block("facts", rows=tuple(tuple(row) for row in facts))]
        + _steps(data)
    )


def _steps(data: ReportData) -> list[Block]:
    """The filter runs of the curation, one row each, and what happened between them."""
    runs = data.curation.filter_runs
    rows = []
    for run in runs:
        counts = run.stats.get("rejected", {})
        failed = sum(n for reason, n in counts.items() if _is_download(reason))
        rows.append(
            [f"{run.label}/", run.job, f"{run.stats['in']:,}", f"{run.stats['kept']:,}",
             f"{sum(counts.values()) - failed:,}", f"{failed:,}" if failed else "",
             ", ".join(run.stats.get("rules", []))]
        )  # fmt: skip
    header = ["folder", "run", "in", "kept", "rejected by rules", "not downloaded", "rules"]
    if not any(row[5] for row in rows):  # no download in these runs (text only), or no failure
        header, rows = header[:5] + header[6:], [row[:5] + row[6:] for row in rows]
    blocks = [Block("h2", "The curation, run by run"), _table(header, rows)]
    if len(runs) > 1:
        between = data.curation.runs[data.curation.runs.index(runs[0]) + 1 : -1]
        said = [
            f"Between them {run.job} ({run.label}/) read {run.stats['in']:,} records and "
            f"got {run.stats['kept']:,} images."
            for run in between
            if not run.is_filter and "in" in run.stats
        ]
        said.append(
            "Every record leaves the curation once: rejected by one run, or kept by the "
            "last; the sections below count each record once and show the rules of every run."
        )
        blocks.append(Block("p", " ".join(said)))
    return blocks


def _removed(data: ReportData) -> list[Block]:
    total = data.stats["in"]
    runs = data.curation.filter_runs
    ran_in = {
        reason: ", ".join(
            run.label
            for run in runs
            if reason in run.stats.get("rejected", {})
            or f"any/{reason}" in run.stats.get("counts", {})
        )
        for reason in data.reasons
    }
    rows = [
        [reason, f"{data.first[reason]:,}", _percent(data.first[reason], total),
         f"{data.any[reason]:,}", _percent(data.any[reason], total), ran_in[reason]]
        for reason in data.reasons
    ]  # fmt: skip
    header = ["reason", "first failing", "% of in", "any failing", "% of in", "run"]
    if len(runs) == 1:
        header, rows = header[:-1], [row[:-1] for row in rows]
    return [
        Block("h2", "Records removed per rule"),
        Block(
            "p",
            "Each rejected record counts once under the first rule it failed, and under "
            "every rule it failed in 'any failing'. ALIGN's rules come first, in the order "
            "they are applied; the images that could not be downloaded last.",
        ),  # fmt: skip
        _table(header, rows),
        Block("figure", "removed_per_rule.png"),
    ]


def _ground_truth(data: ReportData) -> list[Block]:
    truth = data.ground_truth
    if truth is None:
        return []
    rows = [
        [rule.rule, rule.label.removeprefix("noise_"), f"{rule.judged:,}", f"{rule.flagged:,}",
         f"{rule.labelled:,}", f"{rule.both:,}", _ratio(rule.precision),
         _ratio(rule.precision_any_noise), _ratio(rule.recall), _ratio(rule.removed_fraction)]
        for rule in truth.rules
    ]  # fmt: skip
    blocks = [
        Block("h2", "Rules against the ground truth"),
        Block(
            "p",
            f"Joined on ({', '.join(truth.keys)}): {truth.matched:,} records matched, "
            f"{truth.unmatched:,} not in the ground truth. {QUALITY_NOTE}",
        ),
        _table(QUALITY_HEADER, rows, dense=True),
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
    run = data.languages_run
    said = f"Detected by {run.label}/ ({run.job}) on the {total:,} records it ran on"
    if data.languages_unmeasured:
        said += (
            f"; the {data.languages_unmeasured:,} records that run rejected before (language "
            "detection runs last, on what every other rule kept) are not counted"
        )
    blocks += [Block("p", said + ".")]
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
    what = (
        "content (sha256), among the downloaded images"
        if data.image_key == "sha256"
        else "URL, as nothing is downloaded yet"
    )
    if data.top_images:
        blocks += [Block("p", f"Images of two or more records, the same by {what}.")]
        rows = [
            [str(i + 1), Thumb(e.example_uid), _image_label(data, e.key), f"{e.count:,}",
             f"{e.kept:,}", e.example_alt or ""]
            for i, e in enumerate(data.top_images)
        ]  # fmt: skip
        header = ["#", "image", "image key", "records", "kept", "an alt-text"]
        blocks += [_table(header, rows, data)]
    else:
        blocks += [Block("p", f"No image appears more than once, the same by {what}.")]
    return blocks


def _image_label(data: ReportData, key: str) -> str:
    return f"sha256 {key[:12]}…" if data.image_key == "sha256" else key


def _verdicts(quality: RuleQuality) -> list[Block]:
    """What a rule caught rightly beside the clean pairs it removed by mistake."""
    label = quality.label.removeprefix("noise_")
    other = quality.flagged_noisy - quality.both
    caught = Block(
        "cards",
        f"Caught: labelled {label} ({quality.both:,} of {quality.flagged:,} flagged"
        + (
            f"; {other:,} more {'carries' if other == 1 else 'carry'} other noise)"
            if other
            else ")"
        ),
        rows=tuple(quality.right),
    )
    if quality.clean:
        mistakes = Block(
            "cards",
            f"Removed by mistake: clean pairs ({quality.flagged_clean:,} of "
            f"{quality.flagged:,} flagged)",
            rows=tuple(quality.clean),
        )
    else:
        mistakes = Block("p", "Removed by mistake: no clean pair.")
    return [Block("beside", rows=(caught, mistakes))]


def _examples(data: ReportData) -> list[Block]:
    truth = data.ground_truth
    how = (
        ": with the ground truth, what each caught rightly beside the clean pairs it removed "
        "by mistake (its false positives); without it, the first records it rejected."
        if truth is not None
        else " first (those with the smallest ids)."
    )
    blocks = [Block("h2", "Examples per rule"), Block("p", "Records each rule rejected" + how)]
    families: dict[str, list[str]] = {}
    for reason in data.reasons:
        if not _is_download(reason):
            families.setdefault(reason_family(reason), []).append(reason)
    for family, reasons in families.items():
        quality = truth.of(family) if truth is not None else None
        if quality is not None and quality.flagged:
            blocks += [Block("h3", family)] + _verdicts(quality)
            continue
        for reason in reasons:
            blocks += [Block("h3", reason)]
            if data.examples.get(reason):
                blocks += [Block("cards", rows=tuple(data.examples[reason]))]
            else:
                blocks += [Block("p", "(no example)")]
    return blocks + _download_failures(data)


def _download_failures(data: ReportData) -> list[Block]:
    failures = [reason for reason in data.reasons if _is_download(reason)]
    if not failures:
        return []
    rows = []
    for reason in failures:
        example = (data.examples.get(reason) or [{}])[0]
        rows.append(
            [reason, f"{data.first[reason]:,}", example.get("url") or "",
             ", ".join(example.get("measured") or [])]
        )  # fmt: skip
    return [
        Block("h2", "Images that could not be downloaded"),
        Block("p", "One example of each failure; the rejects hold them all."),
        _table(["reason", "records", "an example URL", "measured"], rows),
    ]


def document(data: ReportData, title: str, more_notes: Sequence[str] = ()) -> list[Block]:
    """The whole report, in reading order; ``more_notes`` are the writer's (e.g. no plots)."""
    return (
        [Block("h1", f"Filter report: {title}")]
        + _summary(data, more_notes)
        + _removed(data)
        + _consent(data)
        + _ground_truth(data)
        + _distributions(data)
        + _frequent(data)
        + _examples(data)
    )


# --- Markdown ---------------------------------------------------------------------------


def _md_text(text: str) -> str:
    """Text with no HTML, pipes, links or emphasis of its own."""
    text = html.escape(_short(text), quote=False)
    for char in "\\|`[]*":
        text = text.replace(char, "\\" + char)
    return text


def _md_cell(cell, data: ReportData) -> str:
    if isinstance(cell, Thumb):
        return f"![{cell.uid}](thumbs/{cell.uid}.jpg)" if cell.uid in data.thumbnails else " "
    return _md_text(str(cell)) or " "


def _md_table(header, rows, data: ReportData) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c, data) for c in row) + " |" for row in rows]
    return lines + [""]


def _card_row(example: dict) -> list:
    return [
        Thumb(example["uid"]),
        example.get("alt") or "",
        example.get("url") or "",
        ", ".join(example.get("reasons") or []),
        ", ".join(example.get("measured") or []),
    ]


def _md_block(block: Block, data: ReportData, figures: list[str]) -> list[str]:
    if block.kind in ("h1", "h2", "h3"):
        return ["#" * int(block.kind[1]) + " " + block.text, ""]
    if block.kind in ("p", "note"):
        text = html.escape(block.text, quote=False)
        return [f"> **{text}**" if block.kind == "note" else text, ""]
    if block.kind == "facts":
        return [f"- **{label}**: {_md_text(value)}" for label, value in block.rows] + [""]
    if block.kind == "figure":
        return (
            [f"![{FIGURE_TITLES[block.text]}]({block.text})", ""] if block.text in figures else []
        )
    if block.kind == "cards":
        rows = [_card_row(example) for example in block.rows]
        table = _table(["image", "alt-text", "url", "reasons", "measured"], rows, data)
        caption = [f"**{html.escape(block.text, quote=False)}**", ""] if block.text else []
        return caption + _md_table(table.header, table.rows, data)
    if block.kind == "beside":
        return [line for child in block.rows for line in _md_block(child, data, figures)]
    return _md_table(block.header, block.rows, data)


def markdown(
    data: ReportData, figures: list[str], title: str, more_notes: Sequence[str] = ()
) -> str:
    lines: list[str] = []
    for block in document(data, title, more_notes):
        lines += _md_block(block, data, figures)
    return "\n".join(lines).rstrip() + "\n"


# --- HTML -------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;
margin:2em auto;padding:0 1em;color:#1d2731;line-height:1.45}
h1{font-size:1.6em;overflow-wrap:anywhere}
h2{margin-top:1.8em;border-bottom:1px solid #dde2e8;padding-bottom:.2em}
h3{margin:1.4em 0 .4em}h4{margin:.2em 0 .4em;font-size:.95em}
table{border-collapse:collapse;margin:.6em 0 1.2em;max-width:100%}
td,th{border:1px solid #dde2e8;padding:.3em .6em;vertical-align:top;text-align:left}
th{background:#f3f5f8}td.n{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}td.t{min-width:12em}
table.facts th{background:none;white-space:nowrap}
.note{background:#fff4e5;border-left:4px solid #f4a261;padding:.5em 1em;margin:.5em 0}
img.fig{max-width:100%;height:auto;display:block;margin:.5em 0 1.5em}
img.thumb{max-width:128px;max-height:128px}
.beside{display:grid;grid-template-columns:repeat(auto-fit,minmax(24em,1fr));gap:0 1.5em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(24em,1fr));gap:.6em 1em;
margin:.4em 0 1em}.beside .cards{grid-template-columns:1fr}
.card{display:flex;gap:.8em;border:1px solid #dde2e8;border-radius:6px;padding:.5em;
min-width:0}.card img{width:96px;height:96px;object-fit:contain;flex:none;
background:#f3f5f8}.card div{min-width:0}.card .alt{font-weight:600}
.card .url,.card .why{font-size:.85em;color:#5b6775;overflow-wrap:break-word}
table.dense{font-size:.85em}table.dense td,table.dense th{padding:.3em .4em}
.beside>p{margin-top:.2em}
"""
# A long token (a URL, a list of measured values) may break after these; a rule's name, up to
# about 30 characters, stays whole.
BREAK_AFTER = re.compile(r"([/&?=,;:])(?=\S)")
LONG_TOKEN = re.compile(r"\S{31,}")
SEGMENT = 24


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _breakable(text: str) -> str:
    """Escaped text whose long tokens (URLs, identifiers, hashes) may break after a separator,
    or every SEGMENT characters where a piece has none."""
    parts, last = [], 0
    for token in LONG_TOKEN.finditer(text):
        parts.append(html.escape(text[last : token.start()]))
        pieces = []
        for piece in BREAK_AFTER.split(token.group()):
            chunks = [piece[i : i + SEGMENT] for i in range(0, len(piece), SEGMENT)] or [""]
            pieces.append("<wbr>".join(html.escape(chunk) for chunk in chunks))
        # split() keeps each separator as its own piece: break after it
        parts.append("".join(p + ("<wbr>" if i % 2 else "") for i, p in enumerate(pieces)))
        last = token.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def _thumb(uid: str, data: ReportData, css: str) -> str:
    if uid not in data.thumbnails:
        return ""
    return f'<img class="{css}" alt="{uid}" src="{_data_uri(data.thumbnails[uid], "image/jpeg")}">'


def _html_cell(cell, data: ReportData) -> str:
    if isinstance(cell, Thumb):
        return f"<td>{_thumb(cell.uid, data, 'thumb')}</td>"
    text = _short(str(cell))
    numeric = text.replace(",", "").replace("%", "").replace(".", "", 1).isdigit()
    if numeric:
        return f'<td class="n">{html.escape(text)}</td>'
    wide = " " in text and len(text) > 24  # prose (an alt-text): never one word a line
    return f'<td class="t">{_breakable(text)}</td>' if wide else f"<td>{_breakable(text)}</td>"


def _why(example: dict) -> str:
    """'alt_too_short (n_unigrams=1), image_too_small (shorter_side=50)': every rule failed."""
    pairs = zip_longest(example.get("reasons") or [], example.get("measured") or [])
    return ", ".join(f"{reason} ({value})" if value else str(reason) for reason, value in pairs)


def _html_card(example: dict, data: ReportData) -> str:
    """A record as a card: thumbnail, alt-text, URL, the rules it failed and their values."""
    return (
        f'<div class="card">{_thumb(example["uid"], data, "")}<div>'
        f'<div class="alt">{_breakable(_short(example.get("alt")))}</div>'
        f'<div class="url">{_breakable(example.get("url") or "")}</div>'
        f'<div class="why">{_breakable(_why(example))}</div></div></div>'
    )


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
    if block.kind == "facts":
        rows = "".join(
            f"<tr><th>{html.escape(label)}</th><td>{_breakable(value)}</td></tr>"
            for label, value in block.rows
        )
        return f'<table class="facts">{rows}</table>'
    if block.kind == "cards":
        caption = f"<h4>{html.escape(block.text)}</h4>" if block.text else ""
        cards = "".join(_html_card(example, data) for example in block.rows)
        return f'<div>{caption}<div class="cards">{cards}</div></div>'
    if block.kind == "beside":
        children = "".join(_html_block(child, data, pngs) for child in block.rows)
        return f'<div class="beside">{children}</div>'
    head = "".join(f"<th>{html.escape(name)}</th>" for name in block.header)
    body = "".join(
        "<tr>" + "".join(_html_cell(cell, data) for cell in row) + "</tr>" for row in block.rows
    )
    css = ' class="dense"' if block.dense else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(
    data: ReportData, pngs: dict[str, bytes], title: str, more_notes: Sequence[str] = ()
) -> str:
    """One HTML file with the plots and thumbnails embedded: it can be mailed or archived."""
    parts = [_html_block(block, data, pngs) for block in document(data, title, more_notes)]
    body = "\n".join(part for part in parts if part)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Filter report: {html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
