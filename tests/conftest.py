"""Session-wide fixtures: the synthetic web, generated once and served on loopback hosts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import options
from tools.synthweb import WebConfig, generate, small_config
from tools.webserver import DEFAULT_HOSTS, WebServer


@pytest.fixture(autouse=True)
def one_worker_per_job(monkeypatch):
    """A job run in a test gets one worker unless its argv says --workers (or Beam's flags):
    the suite runs two test files at a time on 2 cores, and a worker process costs ~1.5 s
    to start. tests/pipeline/test_workers.py checks the default itself."""
    monkeypatch.setattr(options, "default_workers", lambda: 1)


@dataclass
class SyntheticWeb:
    """A generated web and the server playing it (see the contract in tools/synthweb.py)."""

    root: Path
    config: WebConfig
    server: WebServer
    manifest: dict

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def hosts(self) -> tuple[str, ...]:
        return self.config.hosts

    @property
    def warc_glob(self) -> str:
        return str(self.root / "warc" / "*.warc.gz")

    @property
    def wat_glob(self) -> str:
        return str(self.root / "wat" / "*.warc.wat.gz")

    @property
    def ground_truth(self) -> Path:
        return self.root / "ground_truth.parquet"

    @property
    def page_urls(self) -> Path:
        return self.root / "pages.txt"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def eval_zero_shot(self) -> Path:
        return self.root / "eval" / "zero_shot"

    @property
    def eval_retrieval(self) -> Path:
        return self.root / "eval" / "retrieval"

    def url(self, host_index: int, path: str) -> str:
        return self.server.url(host_index, path)


@pytest.fixture(scope="session")
def synthetic_web(tmp_path_factory: pytest.TempPathFactory):
    """A ~400-pair web with every noise kind and fault, served for the whole session.

    The server starts first (on a free port, on 127.0.0.1-4) because every URL in the web
    embeds the port; it picks up the generated routes with reload().
    """
    root = tmp_path_factory.mktemp("synthetic_web")
    server = WebServer(root / "site", port=0, hosts=DEFAULT_HOSTS)
    try:
        config = small_config(server.port)
        manifest = generate(root, config)
        server.reload()
        yield SyntheticWeb(root, config, server, manifest)
    finally:
        server.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a ``slow`` test run first. ``make test`` hands whole files to two workers
    in collection order (``--dist loadfile --no-loadscope-reorder``); a minutes-long file
    handed out last would leave one worker idle while the other finishes it, so the longest go
    first (stable otherwise)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
