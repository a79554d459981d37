"""A pair whose image could not be downloaded has nothing to train on."""

from __future__ import annotations

from filters.rule import ALL, NONE, RECORD, Rule, Verdict

STATUS_OK = "ok"  # the download status of a usable image (pipeline/records.py re-exports it)
DOWNLOAD_FAILED = "download_"  # + the download's status: download_http_404, ...


def check_download(status: str | None, error: str | None) -> Verdict:
    """The reason names the download's failure (download_http_404, download_timeout, ...)."""
    if status != STATUS_OK:
        return f"{DOWNLOAD_FAILED}{status}", (error or "")[:200]
    return None


RULE = Rule(
    name="download",
    order=10,
    reasons=(DOWNLOAD_FAILED + "*",),
    measures="the download's status: ok, or why the image could not be had",
    stage=RECORD,
    modes=(ALL, NONE),
    check=check_download,
    inputs=("status", "error"),
)
