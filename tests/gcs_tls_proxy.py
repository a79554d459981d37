"""Lets TensorFlow's own gs:// client reach the local GCS emulator.

TensorFlow's GCS filesystem has Google's endpoints built in (https://www.googleapis.com,
https://storage.googleapis.com) and no emulator setting, but its libcurl honours
``https_proxy`` and ``CURL_CA_BUNDLE``, and its auth takes ``GOOGLE_AUTH_TOKEN_FOR_TESTING``.
So: an HTTPS proxy on 127.0.0.1 answers CONNECT to those hosts itself, with a certificate
from a throw-away CA that only this process trusts, and forwards each decrypted request to
the emulator as plain HTTP. TensorFlow runs unchanged; only the network path is local.
"""

from __future__ import annotations

import datetime
import http.client
import json
import socketserver
import ssl
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "expect"}


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf certificate for Google's storage hosts; returns (ca, cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "align test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host) for host in GOOGLE_HOSTS]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def read_request(stream) -> tuple[str, str, dict[str, str], bytes] | None:
    line = stream.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
        name, value = header.decode("latin-1").split(":", 1)
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int(stream.readline().split(b";")[0], 16):
            body += stream.read(size)
            stream.readline()
        stream.readline()
    else:
        body = stream.read(int(headers.get("content-length", 0)))
    return method, target, headers, body


class ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self):
        request = read_request(self.rfile)
        if request is None or request[0] != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host = request[1].split(":")[0]
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        if host not in GOOGLE_HOSTS:
            return
        with self.server.tls.wrap_socket(self.connection, server_side=True) as tls:
            stream = tls.makefile("rwb")
            while (inner := read_request(stream)) is not None:
                self.forward(stream, *inner)

    def forward(self, stream, method: str, target: str, headers: dict, body: bytes) -> None:
        if method == "POST" and "uploadType=media" in target and "%2F&" in target + "&":
            # A "folder" marker (an empty object named ".../"): the emulator stores objects
            # as files and cannot hold one, and GCS itself needs none; acknowledge it.
            name = unquote(parse_qs(urlsplit(target).query)["name"][0])
            answer = json.dumps({"kind": "storage#object", "name": name, "size": "0"}).encode()
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            stream.write(f"{head}Content-Length: {len(answer)}\r\n\r\n".encode() + answer)
            stream.flush()
            return
        endpoint = urlsplit(self.server.emulator)
        upstream = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=60)
        sent = {k: v for k, v in headers.items() if k not in HOP_HEADERS | {"host"}}
        sent["host"] = endpoint.netloc
        sent["content-length"] = str(len(body))
        upstream.request(method, target, body=body, headers=sent)
        response = upstream.getresponse()
        data = response.read()
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        for name, value in response.getheaders():
            if name.lower() == "location":  # resumable upload URL: keep the upload on the proxy
                value = value.replace(self.server.emulator, f"https://{GOOGLE_HOSTS[0]}")
            if name.lower() not in HOP_HEADERS | {"content-length"}:
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(data)}")
        stream.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        stream.flush()
        upstream.close()


class TlsProxy(socketserver.ThreadingTCPServer):
    """The proxy; ``environment`` is what a TensorFlow process needs to use it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: str, folder: Path):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.emulator = emulator
        ca, cert, key = make_certificates(folder)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(cert, key)
        self.environment = {
            "https_proxy": f"http://127.0.0.1:{self.server_address[1]}",
            "CURL_CA_BUNDLE": str(ca),
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator-token",
            "GCS_RETRY_CONFIG_MAX_RETRIES": "2",  # a local server: fail fast, not after 10
        }
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
