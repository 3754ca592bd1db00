"""Who may read and who may change: the optional bearer tokens of the HTTP services.

``ORDERSTATS_API_READ_TOKEN`` guards reading (the workers' API, page, metrics; the gateway's
metrics), ``ORDERSTATS_API_ADMIN_TOKEN`` anything that changes state (the workers have no
such route today; the gateway's order intake accepts it as a key for every store). The admin
token reads too. An unset token leaves its part open, as before; a change never needs less
than a read. A presented token is hashed and compared with the hash of every configured token
by :func:`hmac.compare_digest`, all of them, match or not: neither the time nor a length
difference tells how close a guess was. Tokens appear in no repr, message or log.
Pure: no aiohttp, no Kafka.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping

READ_VAR = "ORDERSTATS_API_READ_TOKEN"
ADMIN_VAR = "ORDERSTATS_API_ADMIN_TOKEN"
COOKIE = "orderstats_token"  # the page's session: HttpOnly, SameSite=Strict
# Probes stay open: a load balancer or Kubernetes asks them without credentials, and they
# say nothing about the data. /login is where a browser trades a token for the cookie.
OPEN_PATHS = frozenset({"/health", "/ready", "/login"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# RFC 6750's b64token alphabet: safe in a header and in a cookie value without quoting.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")


class Level(IntEnum):
    """What a request may do; comparable (ADMIN includes READ)."""

    NONE = 0
    READ = 1
    ADMIN = 2


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _token(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name) or ""
    if raw and not _TOKEN.fullmatch(raw):
        raise ValueError(f"{name}: must be 16 to 512 characters of A-Z a-z 0-9 - . _ ~ + / = "
                         f"(e.g. `openssl rand -hex 32`); the value is not shown")
    return raw


@dataclass(frozen=True)
class Access:
    """The configured tokens (either may be empty: that part is open)."""

    read_token: str = field(default="", repr=False)
    admin_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Access":
        """Raises ValueError naming the variable (never its value)."""
        return cls(_token(env, READ_VAR), _token(env, ADMIN_VAR))

    @property
    def enabled(self) -> bool:
        return bool(self.read_token or self.admin_token)

    def required(self, method: str, path: str) -> Level:
        """The level a request needs: none for probes, else read, or admin to change."""
        if path in OPEN_PATHS:
            return Level.NONE
        read = Level.READ if self.read_token else Level.NONE
        if method.upper() in READ_METHODS:
            return read
        return Level.ADMIN if self.admin_token else read

    def grant(self, presented: str | None) -> Level:
        """The level ``presented`` carries; every token is compared, in constant time."""
        digest = _digest(presented or "")
        admin = hmac.compare_digest(digest, _digest(self.admin_token))
        read = hmac.compare_digest(digest, _digest(self.read_token))
        if presented and self.admin_token and admin:
            return Level.ADMIN
        if presented and self.read_token and read:
            return Level.READ
        return Level.NONE

    def peer_headers(self) -> dict[str, str]:
        """What one worker sends another (routed questions, fan-out): reads only."""
        return {"Authorization": f"Bearer {self.read_token}"} if self.read_token else {}


def bearer(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer TOKEN`` (None: absent or another scheme)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def session_cookie(token: str, secure: bool) -> str:
    """A Set-Cookie value holding ``token``: unreadable by scripts (HttpOnly), never sent
    with a request another site starts (SameSite=Strict), for the browser session only."""
    return (f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            + ("; Secure" if secure else ""))


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (no open redirect)."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return "/"
    return target
