"""The fetcher never reaches a non-public address: direct, via DNS, or via a redirect.

A real server listens on 127.0.0.1 and 127.0.0.2, so each blocked request would succeed
(or fail differently) if the guard were removed. For the redirect tests 127.0.0.1 stands in
for "the public internet" (a classify that calls it public) and 127.0.0.2 is the private
target the redirect tries to reach.
"""

import pytest

from pipeline.fetch.fetcher import FetchConfig, Fetcher
from pipeline.fetch.netguard import AddressGuard, classify
from tests.pipeline.fetch.testserver import ScriptedServer, redirect, respond


@pytest.fixture(scope="module")
def server():
    server = ScriptedServer(hosts=("127.0.0.1", "127.0.0.2"))
    server.routes["/secret"] = respond(200, b"internal data")
    yield server
    server.close()


def config(**overrides) -> FetchConfig:
    values = dict(connect_timeout=1.0, read_timeout=1.0, backoff=0.01, retries=0)
    values.update(overrides)
    return FetchConfig(**values)


def pretend_public(address):
    """127.0.0.1 plays a public web host; everything else is classified for real."""
    return None if str(address) == "127.0.0.1" else classify(address)


@pytest.fixture(scope="module")
def guarded():
    """A fetcher that blocks every private address."""
    with Fetcher(config()) as fetcher:
        yield fetcher


@pytest.fixture(scope="module")
def open_fetcher():
    with Fetcher(config(allow_private_networks=True)) as fetcher:
        yield fetcher


SPELLINGS_OF_LOOPBACK = [
    "127.0.0.1",
    "127.0.0.2",
    "2130706433",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "0x7f000001",
    "127.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
]


@pytest.mark.parametrize("host", SPELLINGS_OF_LOOPBACK)
def test_loopback_in_any_spelling_is_blocked(server, guarded, host):
    result = guarded.fetch(f"http://{host}:{server.port}/secret")
    assert (result.status, result.body) == ("blocked_address", None)


@pytest.mark.parametrize("host", SPELLINGS_OF_LOOPBACK)
def test_the_same_spellings_reach_the_server_when_private_networks_are_allowed(
    server, open_fetcher, host
):
    result = open_fetcher.fetch(f"http://{host}:{server.port}/secret")
    assert (result.status, result.body) == ("ok", b"internal data")


@pytest.mark.parametrize(
    "host",
    [
        "[::1]",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "224.0.0.1",
        "[fd00::1]",
        "[fe80::1]",
        "[2002:7f00:1::]",
        "[64:ff9b::7f00:1]",
        "metadata.google.internal",
        "0",
    ],
)
def test_private_link_local_metadata_and_multicast_hosts_are_blocked(guarded, host):
    assert guarded.fetch(f"http://{host}/latest/meta-data/").status == "blocked_address"


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd00::1", "::ffff:10.0.0.1"]
)
def test_names_that_resolve_to_private_addresses_are_blocked(server, address):
    with Fetcher(config(), resolver=lambda name: [address]) as fetcher:
        result = fetcher.fetch(f"http://innocent.example:{server.port}/secret")
    assert result.status == "blocked_address" and "innocent.example" in result.error


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(server):
    asked = []

    def resolver(name):
        asked.append(name)
        return ["127.0.0.2"] if len(asked) == 1 else ["127.0.0.1"]  # rebinding attempt

    server.routes["/pinned"] = respond(200, b"pinned")
    with Fetcher(config(allow_private_networks=True, respect_robots=False), resolver) as f:
        result = f.fetch(f"http://pinned.example:{server.port}/pinned")
    assert result.status == "ok"
    (hit,) = server.hits("/pinned")
    assert hit["server"] == "127.0.0.2" and hit["host"] == f"pinned.example:{server.port}"
    assert asked == ["pinned.example"]


@pytest.fixture(scope="module")
def internet(server):
    """A fetcher where 127.0.0.1 is public and names resolve as the test says."""
    names = {"loop2.example": ["127.0.0.2"], "meta.example": ["169.254.169.254"]}
    guard = AddressGuard(resolver=names.__getitem__, classify=pretend_public)
    with Fetcher(config(), guard=guard) as fetcher:
        yield fetcher


def test_the_pretend_public_host_is_reachable(server, internet):
    server.routes["/public"] = respond(200, b"public")
    assert internet.fetch(server.url("/public")).status == "ok"


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/secret",
        "http://2130706434:{port}/secret",
        "http://0x7f.0.0.2:{port}/secret",
        "http://[::ffff:127.0.0.2]:{port}/secret",
        "http://loop2.example:{port}/secret",
        "http://meta.example/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_redirects_into_private_addresses_are_blocked(server, internet, target):
    path = f"/jump/{abs(hash(target))}"
    server.routes[path] = redirect(target.format(port=server.port))
    before = len(server.hits("/secret", "127.0.0.2"))
    result = internet.fetch(server.url(path))
    assert (result.status, result.body) == ("blocked_address", None)
    assert len(server.hits("/secret", "127.0.0.2")) == before


def test_redirect_to_a_private_address_is_followed_when_allowed(server, open_fetcher):
    server.routes["/jump-open"] = redirect(f"http://127.0.0.2:{server.port}/secret")
    result = open_fetcher.fetch(server.url("/jump-open"))
    assert (result.status, result.body) == ("ok", b"internal data")


def test_robots_txt_is_never_fetched_from_a_blocked_address(server, guarded):
    before = len(server.hits("/robots.txt"))
    guarded.fetch(f"http://127.0.0.1:{server.port}/secret")
    assert len(server.hits("/robots.txt")) == before
