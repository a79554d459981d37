"""A scripted HTTP/1.1 server on loopback addresses for the fetcher's and downloader's tests.

Each route is a function of the request handler that sends the whole answer, so a test
can script any behaviour (faults, redirects, headers) in a line; every request is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


def send(
    handler: BaseHTTPRequestHandler,
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    content_type: str = "application/octet-stream",
) -> None:
    handler.send_response(status)
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {name.lower() for name, _ in pairs}
    if "content-type" not in names:
        pairs.append(("Content-Type", content_type))
    if "content-length" not in names:
        pairs.append(("Content-Length", str(len(body))))
    for name, value in pairs:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    return lambda handler: send(handler, status, headers={"Location": location})


def respond(status: int = 200, body: bytes = b"", **kwargs) -> Route:
    return lambda handler: send(handler, status, body, **kwargs)


def hang(seconds: float = 5.0) -> Route:
    def route(handler):
        time.sleep(seconds)
        send(handler, 200, b"late")

    return route


def truncated(body: bytes, claimed: int) -> Route:
    def route(handler):
        send(handler, 200, body, headers={"Content-Length": str(claimed)})
        handler.close_connection = True

    return route


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up on a scripted fault is expected, not news


class ScriptedServer:
    """Serves ``routes`` (path -> Route) on one port of several loopback addresses."""

    def __init__(self, hosts: tuple[str, ...] = ("127.0.0.1", "127.0.0.2")):
        self.routes: dict[str, Route] = {}
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._servers = []
        self.port = 0
        for host in hosts:
            server = _QuietServer((host, self.port), self._handler_class())
            self.port = server.server_address[1]
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def hits(self, path: str, host: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path and host in (None, r["server"])]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.routes.clear()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _handler_class(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's naming)
                with owner._lock:
                    owner.requests.append(
                        {
                            "path": self.path,
                            "server": self.server.server_address[0],
                            "host": self.headers.get("Host"),
                            "user_agent": self.headers.get("User-Agent"),
                            "time": time.monotonic(),
                        }
                    )
                route = owner.routes.get(self.path)
                if route is None:
                    send(self, 404, b"not found")
                else:
                    route(self)

            def log_message(self, *args):
                pass

        return Handler
