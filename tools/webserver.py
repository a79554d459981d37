"""A local HTTP/1.1 server for the synthetic web: several loopback "hosts" on one port, each URL's
fault (404, 500, 429, slow, hang, truncated, wrong type, redirects, X-Robots-Tag) played from
the web's routes.json; without one it serves any directory as it is (a benchmark's peer).

A thread per connection with keep-alive sustains hundreds of concurrent clients; closing the
server ends every connection, hung ones included, so it never blocks a test session's end.

It also measures how polite its clients were (``politeness()``): per host, the most
connections open at once, the most requests in progress at once, the most request starts in
any one-second window, and how often robots.txt was fetched.
"""

from __future__ import annotations

import argparse
import bisect
import json
import mimetypes
import os
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
DEFAULT_SETTINGS = {"slow_seconds": 1.5, "hang_seconds": 60.0, "redirect_hops": 2}
CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".html": "text/html",
    ".txt": "text/plain",
    ".json": "application/json",
}


def most_in_window(times: Sequence[float], seconds: float = 1.0) -> int:
    """The most of ``times`` that fall in any half-open window ``[t, t + seconds)``."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, start + seconds) - i for i, start in enumerate(ordered)),
        default=0,
    )


class HostMeter:
    """What each host saw of its clients, counted by the server threads as it happens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.open: Counter[str] = Counter()
            self.peak_open: Counter[str] = Counter()
            self.active: Counter[str] = Counter()
            self.peak_active: Counter[str] = Counter()
            self.starts: defaultdict[str, list[float]] = defaultdict(list)
            self.robots: Counter[str] = Counter()

    def connection(self, host: str, change: int) -> None:
        with self._lock:
            self.open[host] += change
            self.peak_open[host] = max(self.peak_open[host], self.open[host])

    def request(self, host: str, path: str, change: int) -> None:
        with self._lock:
            self.active[host] += change
            self.peak_active[host] = max(self.peak_active[host], self.active[host])
            if change > 0:
                self.starts[host].append(time.monotonic())
                self.robots[host] += path == "/robots.txt"

    def report(self) -> dict[str, dict[str, int]]:
        """Per host: ``connections`` and ``requests`` (peak at once), ``starts_per_second``
        (the most in any one-second window), ``robots_txt`` fetches and ``total`` requests."""
        with self._lock:
            return {
                host: {
                    "connections": self.peak_open[host],
                    "requests": self.peak_active[host],
                    "starts_per_second": most_in_window(starts),
                    "robots_txt": self.robots[host],
                    "total": len(starts),
                }
                for host, starts in sorted(self.starts.items())
            }


class WebServer:
    """Serves ``root`` on every address of ``hosts`` at one port (0: a free one).

    ``root`` holds one folder per host address (the synthetic web's ``site/``), or is served
    as it is on every host. ``faults=False`` ignores routes.json.
    """

    def __init__(
        self,
        root: str | Path,
        port: int = 0,
        hosts: Sequence[str] = DEFAULT_HOSTS,
        faults: bool = True,
    ) -> None:
        self.root = Path(root)
        self.hosts = tuple(hosts)
        self.faults = faults
        self.closing = threading.Event()
        self.hits: Counter[tuple[str, str]] = Counter()
        self.meter = HostMeter()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.routes: dict[str, dict[str, dict]] = {}
        self.settings = dict(DEFAULT_SETTINGS)
        self.reload()
        self._servers = self._bind(port)
        self.port = self._servers[0].server_address[1]
        self._threads = [
            threading.Thread(
                target=s.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name=f"webserver-{s.server_address[0]}",
            )
            for s in self._servers
        ]
        for thread in self._threads:
            thread.start()

    def reload(self) -> None:
        """Re-reads routes.json (e.g. after generating a web into a served folder)."""
        path = self.root / "routes.json"
        if self.faults and path.exists():
            document = json.loads(path.read_text())
            self.routes = document.get("routes", {})
            self.settings = {**DEFAULT_SETTINGS, **document.get("settings", {})}
        else:
            self.routes, self.settings = {}, dict(DEFAULT_SETTINGS)

    def _bind(self, port: int) -> list[_Server]:
        for _attempt in range(50):
            servers: list[_Server] = []
            try:
                for host in self.hosts:
                    server = _Server(
                        (host, port or (servers[0].server_address[1] if servers else 0)), _Handler
                    )
                    server.web = self
                    servers.append(server)
                return servers
            except OSError:
                for server in servers:
                    server.server_close()
                if port:
                    raise
        raise OSError(f"no port free on all of {self.hosts}")

    def docroot(self, host: str) -> Path:
        per_host = self.root / host
        return per_host if per_host.is_dir() else self.root

    def url(self, host_index: int, path: str) -> str:
        return f"http://{self.hosts[host_index]}:{self.port}/{path.lstrip('/')}"

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._lock:
            known = connection in self._connections
            (self._connections.add if alive else self._connections.discard)(connection)
        if alive != known:
            try:
                host = connection.getsockname()[0]
            except OSError:
                return
            self.meter.connection(host, 1 if alive else -1)

    def politeness(self) -> dict[str, dict[str, int]]:
        """What each host saw since the start or ``meter.reset()`` (see HostMeter.report)."""
        return self.meter.report()

    def count(self, host: str, path: str) -> int:
        """Counts a request; returns how many came before it for this URL."""
        with self._lock:
            seen = self.hits[(host, path)]
            self.hits[(host, path)] += 1
            return seen

    def close(self) -> None:
        """Stops listening and ends every open connection, hung ones included."""
        self.closing.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024
    web: WebServer

    def process_request(self, request, client_address):
        self.web.track(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.web.track(request, False)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-response is not the server's error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "synthweb/1.0"
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self._measured(body=True)

    def do_HEAD(self) -> None:
        self._measured(body=False)

    def _measured(self, body: bool) -> None:
        meter, host = self.server.web.meter, self.connection.getsockname()[0]
        path = unquote(urlsplit(self.path).path)
        meter.request(host, path, 1)
        try:
            self._respond(body)
        finally:
            meter.request(host, path, -1)

    # --- dispatch ------------------------------------------------------------------------

    def _respond(self, body: bool) -> None:
        web = self.server.web
        host = self.connection.getsockname()[0]
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        route = web.routes.get(host, {}).get(path, {})
        fault = route.get("fault", "none")
        settings = web.settings
        if fault == "http_404":
            return self._send(404, b"not found\n", "text/plain", body)
        if fault == "http_500":
            return self._send(500, b"internal server error\n", "text/plain", body)
        if fault == "http_429" and web.count(host, path) % 2 == 0:
            return self._send(429, b"slow down\n", "text/plain", body, {"Retry-After": "1"})
        if fault == "hang":
            web.closing.wait(float(settings["hang_seconds"]))
            self.close_connection = True
            return None
        if fault == "slow":
            web.closing.wait(float(settings["slow_seconds"]))
        if fault in ("redirect", "redirect_loop", "redirect_other_host"):
            location = self._redirect(fault, route, path, parse_qs(parts.query))
            if location:
                return self._send(302, b"", "text/plain", body, {"Location": location})
        target = self._locate(host, path)
        if target is None:
            return self._send(404, b"not found\n", "text/plain", body)
        content_type = route.get("content_type") or _guess_type(path)
        if fault == "wrong_content_type":
            content_type = "text/plain"
        headers = [tuple(pair) for pair in route.get("headers", ())]  # a name may repeat
        if fault == "x_robots_tag":
            headers.append(("X-Robots-Tag", route.get("x_robots_tag", "noai")))
        if fault == "truncated":
            return self._send_truncated(target.read_bytes(), content_type, body)
        return self._send_file(target, content_type, body, headers)

    def _redirect(self, fault: str, route: dict, path: str, query: dict) -> str | None:
        web = self.server.web
        if fault == "redirect_other_host":
            return f"http://{route['target_host']}:{web.port}{path}"
        if fault == "redirect_loop":  # A -> A?loop=1 -> A -> ... forever
            return path if "loop" in query else f"{path}?loop=1"
        hop = int(query.get("hop", ["0"])[0])
        if hop < int(web.settings["redirect_hops"]):
            return f"{path}?hop={hop + 1}"
        return None

    def _locate(self, host: str, path: str) -> Path | None:
        """The file behind a path, never outside the host's folder."""
        root = self.server.web.docroot(host).resolve()
        target = (root / path.lstrip("/")).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return target

    # --- writing -------------------------------------------------------------------------

    def _send(self, status: int, data: bytes, content_type: str, body: bool, headers=None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if body and data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_file(self, target: Path, content_type: str, body: bool, headers: list) -> None:
        """A file with sendfile(2): no copy through Python, the GIL released while it goes."""
        try:
            with open(target, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(size))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                if body and size:
                    self.wfile.flush()
                    self.connection.sendfile(handle)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_truncated(self, data: bytes, content_type: str, body: bool) -> None:
        """Promises the whole file, sends half of it, and hangs up."""
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass


def _guess_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


@contextmanager
def serve(
    site_dir: str | Path, port: int = 0, hosts: Sequence[str] = DEFAULT_HOSTS, faults: bool = True
) -> Iterator[WebServer]:
    """``with serve(site) as server: ...``: the server runs inside the block, closed after."""
    server = WebServer(site_dir, port=port, hosts=hosts, faults=faults)
    try:
        yield server
    finally:
        server.close()


def serve_until_interrupted(
    site_dir: str | Path, port: int, hosts: Sequence[str], faults: bool = True
) -> None:
    with serve(site_dir, port=port, hosts=hosts, faults=faults) as server:
        print(f"serving {site_dir} on {', '.join(hosts)} port {server.port}; Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.webserver", description=__doc__)
    parser.add_argument("--root", required=True, help="a synthetic web's site/ or any folder")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--hosts", type=int, default=len(DEFAULT_HOSTS), help="serve on 127.0.0.1 .. 127.0.0.N"
    )
    parser.add_argument("--no-faults", action="store_true", help="ignore routes.json")
    args = parser.parse_args(argv)
    hosts = tuple(f"127.0.0.{i + 1}" for i in range(args.hosts))
    serve_until_interrupted(args.root, args.port, hosts, faults=not args.no_faults)


if __name__ == "__main__":
    main()
