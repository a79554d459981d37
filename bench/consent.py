"""What honouring page reservations costs the crawl's extractor: from_response on the synthetic
web's HTML pages with the consent decision (collecting <meta name> tags, reading X-Robots-Tag,
robots meta and TDMRep) against the same extractor with both switched off.

    .venv/bin/python bench/consent.py [--pairs 2000] [--rounds 7]

CPU seconds (a busy machine disturbs them less than wall time), best of ``--rounds``
interleaved runs of each; prints the ratio (1.0 would be free).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.crawl import extract, harvest  # noqa: E402
from pipeline.warc.reader import iter_records, parse_http_response  # noqa: E402
from tools.synthweb import generate, small_config  # noqa: E402


def html_pages(root: Path) -> list[tuple[str, dict, bytes]]:
    pages = []
    for path in sorted((root / "warc").glob("*.warc.gz")):
        with open(path, "rb") as handle:
            for record in iter_records(handle):
                if getattr(record, "type", "") != "response":
                    continue
                response = parse_http_response(record.block)
                if response and response.headers.get("content-type", "").startswith("text/html"):
                    pages.append((record.target_uri, response.headers, response.payload))
    return pages


def cpu_of(pages, repeats: int = 5) -> float:
    options = harvest.HarvestOptions()
    start = time.process_time()
    for _ in range(repeats):
        for uri, headers, payload in pages:
            harvest.from_response("bench", uri, headers, payload, options)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        generate(folder, small_config(8000, n_pairs=args.pairs))
        pages = html_pages(Path(folder))
    on = (harvest.page_reservation, extract.page_metas)
    off = (lambda *_: None, lambda _tree: [])
    times = {"on": [], "off": []}
    for _ in range(args.rounds):
        for name, (reservation, metas) in (("on", on), ("off", off)):
            harvest.page_reservation, extract.page_metas = reservation, metas
            times[name].append(cpu_of(pages))
    with_consent, without = min(times["on"]), min(times["off"])
    print(
        f"{len(pages)} pages x5: extractor CPU {with_consent:.3f} s with consent decisions, "
        f"{without:.3f} s without: {with_consent / without:.3f}x"
    )


if __name__ == "__main__":
    main()
