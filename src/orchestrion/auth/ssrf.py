"""Refuse HTTP task URLs that reach into the server's own network (SSRF).

`check_url` accepts only ``http``/``https`` URLs whose host resolves *only* to public
addresses. It refuses loopback, private, shared (CGNAT), link-local (169.254.169.254 is the
cloud metadata service), unique-local, multicast, reserved and unspecified addresses, and
sees through the spellings that smuggle them past naive checks: ``127.1``, ``2130706433``,
``0x7f000001``, ``0177.0.0.1``, a trailing dot, full-width digits, IPv6 with an embedded
IPv4 address (``::ffff:127.0.0.1``, ``::127.0.0.1``, NAT64, 6to4, Teredo), zone ids.

The check runs on the *resolved* addresses (the resolver is an argument, so tests send no
packet), and every address must pass: a name with one public and one private record is
refused. Call it again for every redirect (`check_redirect`), and connect only to the
addresses it returned (`CheckedURL.addresses`): resolving again at connect time would let a
rebinding DNS server answer differently the second time.

An admin's `AllowList` lets chosen hostnames (``internal.example``, ``*.corp.example``) or
networks (``10.20.0.0/16``) through.
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import urljoin, urlsplit

import msgspec

from orchestrion.errors import UnsafeURL

__all__ = [
    "BLOCKED_NETWORKS",
    "AllowList",
    "CheckedURL",
    "Resolver",
    "check_redirect",
    "check_url",
    "is_public_address",
    "parse_host",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port) -> IP address strings``; raises OSError when the name does not resolve.
Resolver = Callable[[str, int], Iterable[str]]

_SCHEMES: Final = {"http": 80, "https": 443}

#: Never reachable from a task unless allow-listed (embedded IPv4 is unwrapped first).
BLOCKED_NETWORKS: Final[tuple[Network, ...]] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64",
        "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPAT = ipaddress.ip_network("::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), TCP addresses only."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class AllowList(msgspec.Struct, frozen=True):
    """Hostnames (exact, or ``*.suffix``) and networks an admin lets HTTP tasks reach."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """``["10.20.0.0/16", "internal.example", "*.corp.example"]``."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not entry or "/" in entry or ":" in entry:
                    raise ValueError(f"bad allow-list entry {raw!r}") from None
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        """True when `host` is allow-listed by name, exactly or under a ``*.`` suffix."""
        if host in self.hosts:
            return True
        return any(h.startswith("*.") and host.endswith(h[1:]) for h in self.hosts)

    def allows_address(self, address: IPAddress) -> bool:
        """True when `address` is in an allow-listed network."""
        return any(address in net for net in self.networks)


class CheckedURL(msgspec.Struct, frozen=True):
    """A URL that passed: connect only to ``addresses`` (sending ``host`` as the Host).

    ``addresses`` is empty only for a host an admin allow-listed by name (not resolved here).
    """

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...] = msgspec.field(default=())


def check_url(
    url: str, *, resolve: Resolver = system_resolver, allow: AllowList | None = None
) -> CheckedURL:
    """Parse, resolve and check ``url``; raise `UnsafeURL` naming the reason if refused."""
    allow = allow or AllowList()
    scheme, host, port = _split(url)
    literal = parse_host(host)
    if literal is not None:
        resolved: list[IPAddress] = [literal]
    elif allow.allows_host(host):
        return CheckedURL(url, scheme, host, port, ())
    elif host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL(f"refusing {host!r}: a loopback name")
    else:
        resolved = _resolve(resolve, host, port)
    for address in resolved:
        if not is_public_address(address) and not allow.allows_address(address):
            via = "" if literal is not None else f" (resolves to {address})"
            raise UnsafeURL(
                f"refusing {scheme}://{host}:{port}{via}: a non-public address; an admin can "
                "allow-list the host or network"
            )
    return CheckedURL(url, scheme, host, port, tuple(str(a) for a in resolved))


def check_redirect(
    previous: CheckedURL,
    location: str,
    *,
    resolve: Resolver = system_resolver,
    allow: AllowList | None = None,
) -> CheckedURL:
    """Check a redirect target (relative to ``previous``); https never downgrades to http."""
    target = urljoin(previous.url, location.strip())
    checked = check_url(target, resolve=resolve, allow=allow)
    if previous.scheme == "https" and checked.scheme == "http":
        raise UnsafeURL(f"refusing redirect from https to http ({checked.host})")
    return checked


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address, with embedded IPv4 unwrapped."""
    for inner in _embedded_ipv4(address):
        if not is_public_address(inner):
            return False
    if any(address in net for net in BLOCKED_NETWORKS if net.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def parse_host(host: str) -> IPAddress | None:
    """The IP address a URL host denotes (all legacy IPv4 spellings), or None for a name.

    Raises `UnsafeURL` for a host that looks numeric but is not a valid address, as browsers
    and URL parsers treat such hosts as invalid rather than as names.
    """
    if host.startswith("["):
        if not host.endswith("]") or "%" in host:
            raise UnsafeURL("refusing an IPv6 host with a zone id or bad brackets")
        try:
            return ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UnsafeURL("refusing an invalid IPv6 address") from None
    labels = host.split(".")
    if not labels[-1] or not _numeric(labels[-1]):
        return None
    if len(labels) > 4 or not all(_numeric(label) for label in labels):
        raise UnsafeURL(f"refusing host {host!r}: it ends in a number but is not an address")
    parts = [_number(label) for label in labels]
    if any(p > 255 for p in parts[:-1]) or parts[-1] >= 256 ** (5 - len(parts)):
        raise UnsafeURL(f"refusing host {host!r}: an IPv4 part is out of range")
    value = parts[-1]
    for index, part in enumerate(parts[:-1]):
        value += part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


# ------------------------------------------------------------------------------ helpers


def _split(url: str) -> tuple[str, str, int]:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise UnsafeURL("refusing a URL with spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("refusing an unparseable URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise UnsafeURL(f"refusing URL scheme {scheme or '(none)'!r}: only http and https")
    netloc_host = parts.netloc.rpartition("@")[2]
    if netloc_host.startswith("["):
        host = netloc_host[: netloc_host.find("]") + 1].lower()
    else:
        host = _normalise_name(parts.hostname or "")
    if not host:
        raise UnsafeURL("refusing a URL without a host")
    return scheme, host, port if port is not None else _SCHEMES[scheme]


def _resolve(resolve: Resolver, host: str, port: int) -> list[IPAddress]:
    """Resolve once; every answer must parse (a zone id such as ``%eth0`` is dropped)."""
    try:
        answers = list(resolve(host, port))
    except (OSError, UnicodeError):
        raise UnsafeURL(f"refusing {host!r}: the name does not resolve") from None
    if not answers:
        raise UnsafeURL(f"refusing {host!r}: the name resolves to no address")
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer.partition("%")[0]))
        except ValueError:
            raise UnsafeURL(f"refusing {host!r}: the resolver answered {answer!r}") from None
    return addresses


def _normalise_name(host: str) -> str:
    host = unicodedata.normalize("NFKC", host).lower().rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeURL("refusing a host name that is not valid IDNA") from None
    return host


def _numeric(label: str) -> bool:
    text = label.lower()
    if text.startswith("0x"):
        return all(c in "0123456789abcdef" for c in text[2:])
    return text.isdigit()


def _number(label: str) -> int:
    text = label.lower()
    if text.startswith("0x"):
        return int(text[2:] or "0", 16)
    if len(text) > 1 and text.startswith("0"):
        if any(c in "89" for c in text):
            raise UnsafeURL(f"refusing host part {label!r}: not a valid octal number")
        return int(text, 8)
    return int(text)


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses carried inside an IPv6 one (mapped, compatible, NAT64, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64 or (address in _V4_COMPAT and int(address) > 1):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found
