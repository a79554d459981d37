"""Measures how a real browser lays out an HTML page: headless Chromium, no driver library.

The page is copied beside itself with a script that runs on ``load`` and writes what it
measured into an attribute of ``<html>``; ``chromium --dump-dom`` prints the DOM after the
load event, so one process per width gives the measurement with nothing to install but the
browser (Debian's ``chromium`` package; ``.ci/run`` installs it where it can).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Off: everything that would reach the network or write beside the profile.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]

# Runs after every image is decoded (load), so thumbnails and plots have their sizes. An
# element overflows when its right edge passes the right edge of <body>'s content box (the
# page's column), or when it clips content it cannot show (scrollWidth beyond its width).
MEASURE = """
<script>
window.addEventListener("load", function () {
  var body = document.body, style = getComputedStyle(body);
  var column = body.getBoundingClientRect().right - parseFloat(style.paddingRight);
  var overflowing = [], found = [];
  body.querySelectorAll("*").forEach(function (element) {
    var box = element.getBoundingClientRect();
    var clips = getComputedStyle(element).overflowX !== "visible";
    if (overflowing.some(function (outer) { return outer.contains(element); })) return;
    var what = element.tagName.toLowerCase() + ": " +
      (element.textContent || element.getAttribute("alt") || "").trim().slice(0, 60);
    if (box.width && box.right > column + 0.5) {
      overflowing.push(element);
      found.push("past the column by " + Math.round(box.right - column) + " px, " + what);
    } else if (clips && element.scrollWidth > element.clientWidth + 1) {
      overflowing.push(element);
      found.push("clips " + (element.scrollWidth - element.clientWidth) + " px, " + what);
    }
  });
  document.documentElement.setAttribute("data-layout", JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    viewportWidth: document.documentElement.clientWidth,
    column: Math.round(column),
    overflowing: found.slice(0, 20)
  }));
});
</script>
"""


def find_browser() -> str | None:
    """Chromium or Chrome on PATH, else None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(browser: str, page: Path, size: tuple[int, int], *action: str, timeout=120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                *action,
                page.resolve().as_uri(),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LANG": "C.UTF-8"},
        )
    if completed.returncode != 0:
        raise RuntimeError(f"{browser} exited {completed.returncode}: {completed.stderr[-2000:]}")
    return completed.stdout


def measure_layout(browser: str, page: Path, width: int) -> dict:
    """{scrollWidth, viewportWidth, column, overflowing} of the page in a window this wide."""
    with tempfile.TemporaryDirectory() as folder:
        measured = Path(folder) / page.name
        source = page.read_text()
        measured.write_text(source.replace("</body>", MEASURE + "</body>", 1))
        dom = _run(browser, measured, (width, 2000), "--dump-dom")
    found = re.search(r'data-layout="([^"]*)"', dom)
    if not found:
        raise RuntimeError(f"{browser} printed no measurement of {page}")
    return json.loads(html.unescape(found.group(1)))


def screenshot(browser: str, page: Path, size: tuple[int, int], out: Path) -> Path:
    """A PNG of the page's top in a window of this (width, height): to look at, not to test."""
    _run(browser, page, size, f"--screenshot={out.resolve()}")
    return out
