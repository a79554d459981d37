"""The report of a finished align-filter run: Markdown, HTML and PNG plots, and a terminal summary.

``align-filter ... --stats`` calls :func:`write_report` after its run, ``align-filter --stats
DIR`` on a finished one; ``python -m pipeline.report.writer DIR [--ground-truth FILE]`` runs it
alone. The data is gathered in one streaming pass (pipeline/report/gather.py), drawn
(pipeline/report/plots.py) and written out (pipeline/report/render.py) to ``DIR/report/``.

The plots need matplotlib, the 'report' extra, which the curation core (a Dataflow worker's
install) leaves out; without it the report is its tables, and says which extra draws them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems

from commandline.extras import MissingExtra, require
from commandline.flags import UsageError, exits_cleanly
from pipeline.report.gather import ReportData, gather
from pipeline.report.render import html_page, markdown, notes
from pipeline.stats import write_bytes

REPORT_DIR = "report"
OWNED_SUFFIXES = (".png", ".md", ".html", ".jpg")


def _remove_stale(report_dir: str) -> None:
    """Files of an earlier report (a plot this run no longer draws must not linger)."""
    for pattern in ("*", "thumbs/*"):
        stale = [
            metadata.path
            for match in FileSystems.match([FileSystems.join(report_dir, pattern)])
            for metadata in match.metadata_list
            if metadata.path.endswith(OWNED_SUFFIXES)
        ]
        if stale:
            FileSystems.delete(stale)


def summary_table(data: ReportData, report_path: str) -> str:
    """A short plain-text table for the terminal."""
    stats = data.stats
    total = max(stats["in"], 1)
    balanced = "yes" if stats.get("balanced") else "NO"
    lines = [
        f"align-filter report: {report_path}",
        f"  in {stats['in']:,}   kept {stats['kept']:,} ({stats['kept'] / total:.1%})   "
        f"rejected {stats['in'] - stats['kept']:,}   balanced {balanced}",
    ]
    runs = data.curation.filter_runs
    if len(runs) > 1:
        lines.append("  runs " + " -> ".join(f"{run.label}/ ({run.job})" for run in runs))
    lines += [f"  ! {note}" for note in notes(data)]
    for row in data.consent:
        pairs = "pairs unknown" if row.pairs is None else f"{row.pairs:,} pairs"
        pages = f"{row.pages:,} pages, " if row.pages else ""
        lines.append(f"  consent {row.signal} at {row.run}/: {pages}{pairs}")
    for row in data.purges:
        removed = sum(row.removed.values())
        lines.append(
            f"  purged {removed:,} records from {row.run}/ at {row.when} ({row.list_path})"
        )
    width = max([len(reason) for reason in data.reasons] + [len("reason")])
    lines.append(f"  {'reason':<{width}}  {'first':>9}  {'any':>9}")
    for reason in data.reasons:
        lines.append(f"  {reason:<{width}}  {data.first[reason]:>9,}  {data.any[reason]:>9,}")
    if data.ground_truth is not None:
        rules = data.ground_truth.rules
        width = max([len(rule.rule) for rule in rules] + [len("vs ground truth")])
        lines.append(
            f"  {'vs ground truth':<{width}}  {'precision':>9}  {'any noise':>9}  {'recall':>6}"
            f"  {'removed':>7}"
        )
        for rule in rules:
            values = (rule.precision, rule.precision_any_noise, rule.recall, rule.removed_fraction)
            p, a, r, m = ("n/a" if value is None else f"{value:.2f}" for value in values)
            lines.append(f"  {rule.rule:<{width}}  {p:>9}  {a:>9}  {r:>6}  {m:>7}")
    return "\n".join(lines)


def plots(data: ReportData) -> tuple[dict[str, bytes], list[str]]:
    """The report's PNGs by file name, and the notes to show: none and a note saying which
    extra draws them, where matplotlib is not installed."""
    try:
        require("report", "drawing them")
    except MissingExtra as missing:
        return {}, [f"No plots: {missing}."]
    from pipeline.report.plots import all_figures, png_bytes  # noqa: PLC0415 - the optional extra

    return {name: png_bytes(figure) for name, figure in all_figures(data).items()}, []


def write_report(
    output_dir: str, ground_truth: str | None = None, print_summary: bool = True
) -> str:
    """Writes DIR/report/{report.md, report.html, *.png, thumbs/} and returns report.md's path."""
    data = gather(output_dir, ground_truth)
    report_dir = FileSystems.join(output_dir, REPORT_DIR)
    _remove_stale(report_dir)
    pngs, missing = plots(data)
    for name, png in pngs.items():
        write_bytes(FileSystems.join(report_dir, name), png)
    if data.thumbnails:
        thumbs_dir = FileSystems.join(report_dir, "thumbs")
        for uid, jpeg in sorted(data.thumbnails.items()):
            write_bytes(FileSystems.join(thumbs_dir, f"{uid}.jpg"), jpeg)
    title = output_dir.rstrip("/")
    report_path = FileSystems.join(report_dir, "report.md")
    write_bytes(report_path, markdown(data, list(pngs), title, missing).encode())
    page = html_page(data, pngs, title, missing)
    write_bytes(FileSystems.join(report_dir, "report.html"), page.encode())
    if print_summary:
        print(summary_table(data, report_path))
    for note in missing:
        print(f"align-filter: note: {note}", file=sys.stderr)
    return report_path


@exits_cleanly("python -m pipeline.report.writer")
def run(argv: Sequence[str] | None = None) -> str:
    """Writes the report of a finished run; returns report.md's path."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.report.writer",
        description="Report of a finished align-filter run.",
    )
    parser.add_argument("output_dir", help="the align-filter --output directory")
    parser.add_argument(
        "--ground-truth", help="the synthetic web's ground_truth.parquet (rule precision/recall)"
    )
    args = parser.parse_args(argv)
    try:
        return write_report(args.output_dir, args.ground_truth)
    except ValueError as error:  # e.g. Arrow's ArrowInvalid on a damaged file: one line too
        raise UsageError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.report.writer``: runs it; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
