"""Which columns of a URL list hold the URL, the caption and the extras, and what the extras
are called in the pair shards. No Beam, no I/O: decided from column names (and, for a file
without a header, its first row) before any work, so a wrong guess stops the job in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commandline.flags import UsageError
from pipeline.ingest.settings import ALL, NONE
from pipeline.records import CAPTION_NAMES, CORE_COLUMNS, URL_NAMES

# Extras may not take these names (case-insensitively): the jobs' own columns and the
# filter's measurements would shadow them. Such an extra is stored as ``input_<name>``.
RESERVED = {name.lower() for name in CORE_COLUMNS}
RESERVED |= {"reasons", "measured", "kept", "language", "n_unigrams"}
RENAME_PREFIX = "input_"


@dataclass(frozen=True)
class Layout:
    """A file's columns as the ingest reads them: the URL and caption columns, and the extras
    as (column in the file, column in the pair shards)."""

    url: str
    caption: str
    extras: tuple[tuple[str, str], ...]

    @property
    def needed(self) -> list[str]:
        """The file's columns the ingest reads, without repeats."""
        return list(dict.fromkeys([self.url, self.caption, *(name for name, _ in self.extras)]))


def looks_like_url(value: str | None) -> bool:
    return (value or "").strip()[:8].lower().startswith(("http://", "https://"))


def is_header(first_row: Sequence[str]) -> bool:
    """A first row is a header unless one of its fields is a URL (CC3M's TSV has none)."""
    return not any(looks_like_url(field) for field in first_row)


def positional_names(count: int) -> list[str]:
    """Column names of a file without a header: "0", "1", ... (as pandas names them)."""
    return [str(index) for index in range(count)]


def _given(where: str, names: Sequence[str], value: str, flag: str) -> str:
    """A column named by a flag: by name, else by 0-based position."""
    if value in names:
        return value
    if value.isdigit() and int(value) < len(names):
        return names[int(value)]
    raise UsageError(f"{where} has no column {value!r} for {flag} (columns: {_listed(names)})")


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(name if len(name) <= 40 else name[:37] + "..." for name in names[:12])
    shown = shown.encode("ascii", "backslashreplace").decode("ascii")
    return shown + (f" and {len(names) - 12} more" if len(names) > 12 else "")


def _guess(
    where: str, names: Sequence[str], known: Sequence[str], what: str, flag: str
) -> str | None:
    found = [name for name in names if name.lower() in known]
    if len(found) > 1:
        raise UsageError(
            f"{where} has several {what} columns ({', '.join(found)}): choose one with {flag}"
        )
    return found[0] if found else None


def choose_layout(
    where: str,
    names: Sequence[str],
    url_col: str | None,
    caption_col: str | None,
    extras: str = ALL,
    first_row: Sequence[str | None] | None = None,
) -> Layout:
    """The layout of a file with columns ``names``; ``first_row`` (its first data row) helps
    guess the columns of a file without a header. Raises UsageError naming the flag to use."""
    if url_col is not None:
        url = _given(where, names, url_col, "--url-col")
    else:
        url = _guess(where, names, URL_NAMES, "url", "--url-col")
        if url is None and first_row is not None:
            urls = [n for n, v in zip(names, first_row, strict=False) if looks_like_url(v)]
            url = urls[0] if len(urls) == 1 else None
    if url is None:
        raise UsageError(f"{where} has no url column (columns: {_listed(names)}): use --url-col")
    if caption_col is not None:
        caption = _given(where, names, caption_col, "--caption-col")
    else:
        caption = _guess(where, names, CAPTION_NAMES, "caption", "--caption-col")
        others = [name for name in names if name != url]
        if caption is None and first_row is not None and len(others) == 1:
            caption = others[0]
    if caption is None:
        raise UsageError(
            f"{where} has no caption column (columns: {_listed(names)}): use --caption-col"
        )
    if caption == url:
        raise UsageError(f"{where}: column {url!r} cannot be both the url and the caption")
    return Layout(url, caption, tuple(extra_columns(where, names, (url, caption), extras)))


def extra_columns(
    where: str, names: Sequence[str], used: Sequence[str], extras: str
) -> list[tuple[str, str]]:
    """(column in the file, name in the pair shards) of the extras ``--extra-cols`` keeps:
    ``all`` (the default), ``none``, or a comma-separated list."""
    if extras == NONE:
        chosen: list[str] = []
    elif extras == ALL:
        chosen = [name for name in names if name not in used]
    else:
        chosen = [name.strip() for name in extras.split(",") if name.strip()]
        for name in chosen:
            if name not in names:
                raise UsageError(
                    f"{where} has no column {name!r} for --extra-cols (columns: {_listed(names)})"
                )
        chosen = [name for name in dict.fromkeys(chosen) if name not in used]
    taken = set(RESERVED)
    renamed = []
    for name in chosen:
        output = name
        while output.lower() in taken or output.startswith("_"):
            output = RENAME_PREFIX + output
        taken.add(output.lower())
        renamed.append((name, output))
    return renamed
