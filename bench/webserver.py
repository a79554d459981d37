"""Requests/s of the synthetic web's server under many concurrent clients, beside the stock
Python server (``python -m http.server``: thread per connection, HTTP/1.0) as the peer.

    .venv/bin/python bench/webserver.py [--clients 200] [--requests 4000] [--files 200]

Each server runs in its own process, serving the same folder of real-photo JPEGs; the
clients (one thread each) reuse their connection where the server allows it.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.synth_images import photo_jpegs  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def load(port: int, names: list[str], clients: int, requests: int) -> tuple[float, int, int]:
    """Seconds, bytes received and failed requests when fetching ``requests`` files with
    ``clients`` concurrent connections (a failed request is counted, the client reconnects)."""
    per_client = requests // clients
    barrier = threading.Barrier(clients)

    def client(index: int) -> tuple[int, int]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        barrier.wait()
        received = failed = 0
        for k in range(per_client):
            try:
                connection.request("GET", "/" + names[(index * per_client + k) % len(names)])
                response = connection.getresponse()
                received += len(response.read())
                failed += response.status != 200
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
        connection.close()
        return received, failed

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    seconds = time.perf_counter() - started
    return seconds, sum(r for r, _ in results), sum(f for _, f in results)


def measure(command: list[str], port: int, names, clients: int, requests: int):
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        return load(port, names, clients, requests)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webserver-") as folder:
        names = []
        for name, data in photo_jpegs(args.files, min_side=400, max_side=700, seed=0):
            (Path(folder) / name).write_bytes(data)
            names.append(name)
        python = sys.executable
        ours_port, stock_port = free_port(), free_port()
        ours = [
            python,
            "-m",
            "tools.webserver",
            "--root",
            folder,
            "--port",
            str(ours_port),
            "--hosts",
            "1",
            "--no-faults",
        ]
        stock = [
            python,
            "-m",
            "http.server",
            str(stock_port),
            "--bind",
            "127.0.0.1",
            "--directory",
            folder,
        ]
        rows = [
            (
                "tools.webserver (keep-alive, sendfile)",
                measure(ours, ours_port, names, args.clients, args.requests),
            ),
            (
                "peer: python -m http.server",
                measure(stock, stock_port, names, args.clients, args.requests),
            ),
        ]
    print(f"{args.clients} concurrent clients, {args.requests} requests of real-photo JPEGs")
    print(f"{'server':<42} {'seconds':>8} {'ok req/s':>9} {'MB/s':>7} {'failed':>7}")
    rates = []
    for label, (seconds, received, failed) in rows:
        rates.append((args.requests - failed) / seconds)
        print(
            f"{label:<42} {seconds:8.2f} {rates[-1]:9.0f} {received / seconds / 1e6:7.1f}"
            f" {failed:7d}"
        )
    print(f"ratio ours / peer (successful requests/s): {rates[0] / max(rates[1], 1e-9):.2f}")


if __name__ == "__main__":
    main()
