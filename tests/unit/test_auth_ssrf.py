"""SSRF: every payload is refused without sending a packet (resolvers here are fakes)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from orchestrion.auth.ssrf import (
    AllowList,
    CheckedURL,
    check_redirect,
    check_url,
    is_public_address,
    parse_host,
)
from orchestrion.errors import TaskError, UnsafeURL

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

#: What the fake DNS knows; anything else does not resolve.
ZONE: dict[str, list[str]] = {
    "example.com": [PUBLIC_V4, PUBLIC_V6],
    "metadata.google.internal": ["169.254.169.254"],
    "metadata.example": ["fd00:ec2::254"],
    "rebind.example": ["10.0.0.5"],
    "split.example": [PUBLIC_V4, "127.0.0.1"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "linklocal.example": ["fe80::1%eth0"],
    "garbage.example": ["not-an-ip"],
    "empty.example": [],
    "internal.corp": ["10.1.2.3"],
    "api.corp": ["10.9.9.9"],
}


def fake_dns(host: str, port: int) -> Iterable[str]:
    try:
        return ZONE[host]
    except KeyError:
        raise OSError(f"no such host {host}") from None


def no_dns(host: str, port: int) -> Iterable[str]:
    raise AssertionError(f"an IP literal must not be resolved (asked for {host})")


LITERALS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/admin",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7F.0.0.1/",
    "http://0177.0.0.1/",
    "http://0177.1/",
    "http://00000177.0.0.01/",
    "http://127.0.0.1./",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://169.254.169.254:80@example.com@169.254.169.254/",
    "http://[fd00:ec2::254]/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://[fd12:3456::1]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "https://user:pw@127.0.0.1/",
    "http://example.com@127.0.0.1/",
    "HTTP://127.0.0.1/",
]


@pytest.mark.parametrize("url", LITERALS)
def test_private_literals_are_refused_without_dns(url: str) -> None:
    with pytest.raises(UnsafeURL, match="non-public address"):
        check_url(url, resolve=no_dns)


RESOLVED = [
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata.example/",
    "http://rebind.example/",
    "http://split.example/",
    "http://mapped.example/",
    "http://linklocal.example/",
    "http://METADATA.GOOGLE.INTERNAL./",
]


@pytest.mark.parametrize("url", RESOLVED)
def test_names_resolving_to_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL, match="resolves to"):
        check_url(url, resolve=fake_dns)


MALFORMED = [
    ("file:///etc/passwd", "scheme"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme"),
    ("ftp://example.com/", "scheme"),
    ("dict://127.0.0.1:11211/stat", "scheme"),
    ("ldap://127.0.0.1/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("//example.com/", "scheme"),
    ("example.com/path", "scheme"),
    ("http:///path", "without a host"),
    ("http://exa mple.com/", "spaces"),
    ("http://127.0.0.1\t/", "control"),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://[::1/", "unparseable"),
    ("http://[fe80::1%25eth0]/", "zone id"),
    ("http://example.com:99999/", "unparseable"),
    ("http://1.2.3.4.5/", "not an address"),
    ("http://%31%32%37.0.0.1/", "not an address"),
    ("http://256.0.0.1/", "out of range"),
    ("http://08.0.0.1/", "octal"),
    ("http://4294967296/", "out of range"),
    ("http://example.123/", "not an address"),
    ("http://localhost/", "loopback name"),
    ("http://api.localhost:8000/", "loopback name"),
    ("http://nowhere.invalid/", "does not resolve"),
    ("http://empty.example/", "no address"),
    ("http://garbage.example/", "answered"),
]


@pytest.mark.parametrize(("url", "reason"), MALFORMED)
def test_other_refusals(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=reason):
        check_url(url, resolve=fake_dns)


def test_payload_count_is_at_least_forty() -> None:
    assert len(LITERALS) + len(RESOLVED) + len(MALFORMED) >= 40


def test_refusal_is_a_task_error() -> None:
    assert issubclass(UnsafeURL, TaskError)


# ------------------------------------------------------------------------------ allowed


@pytest.mark.parametrize(
    ("url", "port", "addresses"),
    [
        ("https://example.com/api", 443, (PUBLIC_V4, PUBLIC_V6)),
        ("http://example.com:8080/", 8080, (PUBLIC_V4, PUBLIC_V6)),
        (f"http://{PUBLIC_V4}/", 80, (PUBLIC_V4,)),
        (f"http://[{PUBLIC_V6}]/", 80, (PUBLIC_V6,)),
        ("http://8.8.8.8/", 80, ("8.8.8.8",)),
        ("http://134744072/", 80, ("8.8.8.8",)),
        ("http://[2002:808:808::1]/", 80, ("2002:808:808::1",)),
    ],
)
def test_public_addresses_pass(url: str, port: int, addresses: tuple[str, ...]) -> None:
    checked = check_url(url, resolve=fake_dns)
    assert checked.port == port
    assert checked.addresses == addresses
    assert checked.url == url


def test_allow_list_by_network_and_host() -> None:
    allow = AllowList.parse(["10.1.0.0/16", "api.corp", "*.svc.corp", "fd00::/8"])
    assert check_url("http://internal.corp/", resolve=fake_dns, allow=allow).addresses == (
        "10.1.2.3",
    )
    assert check_url("http://api.corp/", resolve=no_dns, allow=allow).addresses == ()
    assert check_url("http://x.svc.corp/", resolve=no_dns, allow=allow).host == "x.svc.corp"
    assert check_url("http://[fd00::1]/", resolve=no_dns, allow=allow)
    with pytest.raises(UnsafeURL):
        check_url("http://10.2.0.1/", resolve=no_dns, allow=allow)
    with pytest.raises(UnsafeURL):
        check_url("http://rebind.example/", resolve=fake_dns, allow=allow)
    with pytest.raises(UnsafeURL):
        check_url("http://svc.corp.evil/", resolve=fake_dns, allow=allow)


@pytest.mark.parametrize("entry", ["", "http://x/", "a:b"])
def test_bad_allow_list_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="allow-list"):
        AllowList.parse([entry])


# ------------------------------------------------------------------------------ redirects


def test_every_redirect_is_checked() -> None:
    first = check_url("https://example.com/start", resolve=fake_dns)
    nxt = check_redirect(first, "/next?x=1", resolve=fake_dns)
    assert nxt.url == "https://example.com/next?x=1"
    for location in (
        "http://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1/",
        "https://rebind.example/",
        "//[::1]/x",
        "file:///etc/passwd",
        "gopher://example.com/",
    ):
        with pytest.raises(UnsafeURL):
            check_redirect(first, location, resolve=fake_dns)


def test_redirect_never_downgrades() -> None:
    first = check_url("https://example.com/", resolve=fake_dns)
    with pytest.raises(UnsafeURL, match="https to http"):
        check_redirect(first, "http://example.com/", resolve=fake_dns)
    plain = check_url("http://example.com/", resolve=fake_dns)
    assert check_redirect(plain, "https://example.com/", resolve=fake_dns).scheme == "https"


def test_dns_rebinding_between_checks() -> None:
    """A name that was public on the first hop and private on the redirect is refused."""
    answers = iter([[PUBLIC_V4], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> Iterable[str]:
        return next(answers)

    first = check_url("http://flip.example/", resolve=rebinding)
    assert first.addresses == (PUBLIC_V4,)
    with pytest.raises(UnsafeURL, match=r"127\.0\.0\.1"):
        check_redirect(first, "/again", resolve=rebinding)


# ------------------------------------------------------------------------------ pieces


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("10.1.65535", "10.1.255.255"),
        ("[::1]", "::1"),
        ("example.com", None),
    ],
)
def test_parse_host(host: str, address: str | None) -> None:
    parsed = parse_host(host)
    assert (None if parsed is None else str(parsed)) == address


def test_checked_url_is_frozen() -> None:
    checked = CheckedURL("http://x/", "http", "x", 80, ("8.8.8.8",))
    with pytest.raises(AttributeError):
        checked.port = 1  # type: ignore[misc]


def test_is_public_address_rejects_mapped_public_too() -> None:
    """IPv4-mapped IPv6 never reaches the wire as such: refuse it outright."""
    import ipaddress

    assert is_public_address(ipaddress.ip_address("8.8.8.8"))
    assert not is_public_address(ipaddress.ip_address("::ffff:8.8.8.8"))
