"""`Endpoint`: a connection (a broker's, or a database's for ``sql`` tasks) opened for use
(its password a `Secret`), and the checks a connection's URL and TLS options pass before it
is stored."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import msgspec

from orchestrion.auth.secret_box import Secret
from orchestrion.types import NO_RICH_REPR, repr_hiding

if TYPE_CHECKING:
    import ssl

__all__ = [
    "SCHEMES",
    "SQL_SCHEMES",
    "TLS_KEYS",
    "ConnectionResolver",
    "Endpoint",
    "check_tls",
    "check_url",
]

#: The URL schemes each kind takes; the second of each pair means TLS.
SCHEMES: Final[dict[str, tuple[str, ...]]] = {
    "redis": ("redis", "rediss"),
    "rabbitmq": ("amqp", "amqps"),
    "nats": ("nats", "tls"),
    "mqtt": ("mqtt", "mqtts"),
}

#: The URL schemes of the database kinds (``sql`` tasks pick the driver themselves).
SQL_SCHEMES: Final[dict[str, tuple[str, ...]]] = {
    "postgres": ("postgresql", "postgres", "postgresql+psycopg"),
    "mysql": ("mysql", "mariadb", "mysql+pymysql", "mariadb+pymysql"),
    "sqlite": ("sqlite",),
}

#: The TLS options a connection may set, and their types.
TLS_KEYS: Final[dict[str, type]] = {
    "enabled": bool,
    "ca_file": str,
    "cert_file": str,
    "key_file": str,
    "insecure": bool,
}

_DEFAULT_PORTS: Final = {
    "redis": 6379,
    "rediss": 6379,
    "amqp": 5672,
    "amqps": 5671,
    "nats": 4222,
    "tls": 4222,
    "mqtt": 1883,
    "mqtts": 8883,
}


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Where a broker is and how to log in, for the process about to connect."""

    namespace: str
    name: str
    kind: str
    url: str
    username: str | None = None
    password: Secret | None = None
    tls: Mapping[str, Any] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        return repr_hiding(self, "password")

    __rich_repr__ = NO_RICH_REPR

    @property
    def uses_tls(self) -> bool:
        """TLS asked for by the options or by the URL's scheme."""
        scheme = urlsplit(self.url).scheme
        tls_scheme = SCHEMES[self.kind][1] if self.kind in SCHEMES else None
        return bool(self.tls.get("enabled")) or scheme == tls_scheme

    @property
    def host(self) -> str:
        """The URL's host."""
        return urlsplit(self.url).hostname or "localhost"

    @property
    def port(self) -> int:
        """The URL's port, or the scheme's default."""
        parts = urlsplit(self.url)
        return parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context the options describe, or None without TLS."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.tls.get("ca_file"))
        if self.tls.get("cert_file"):
            context.load_cert_chain(self.tls["cert_file"], self.tls.get("key_file"))
        if self.tls.get("insecure"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def password_text(self) -> str | None:
        """The password itself, for the client library that sends it."""
        return None if self.password is None else self.password.reveal()


#: ``(namespace, connection name) -> Endpoint``; raises (`NotFound`, `SecretError`).
ConnectionResolver = Callable[[str, str], Endpoint]


def check_url(kind: str, url: str) -> None:
    """`ValueError` naming the problem unless `url` is a URL of `kind` (a broker or a
    database) that carries no password (credentials belong in a secret)."""
    schemes = {**SCHEMES, **SQL_SCHEMES}
    if kind not in schemes:
        raise ValueError(f"unknown connection kind {kind!r}: one of {', '.join(schemes)}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # parsing the port raises on a bad one
    except ValueError as exc:
        raise ValueError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in schemes[kind]:
        raise ValueError(
            f"a {kind} URL starts with {' or '.join(s + '://' for s in schemes[kind])}, got {url!r}"
        )
    if kind == "sqlite":
        if parts.netloc or len(parts.path) < 2:
            raise ValueError(
                f"a sqlite URL names a file: sqlite:///relative.db or sqlite:////abs/path.db,"
                f" got {url!r}"
            )
        return
    if not parts.hostname:
        raise ValueError(f"the URL {url!r} names no host")
    if parts.password is not None:
        raise ValueError(
            "the URL holds a password: store it as a secret and name it with"
            " --password-secret (connections never hold credentials)"
        )


def check_tls(tls: Mapping[str, Any]) -> None:
    """`ValueError` naming the first unknown TLS option or one of the wrong type."""
    for key, value in tls.items():
        wanted = TLS_KEYS.get(key)
        if wanted is None:
            raise ValueError(f"unknown TLS option {key!r}: one of {', '.join(TLS_KEYS)}")
        if not isinstance(value, wanted):
            raise ValueError(f"the TLS option {key!r} is a {wanted.__name__}")
