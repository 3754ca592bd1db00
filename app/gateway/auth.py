"""Who may send what: per-store API keys, stored hashed, compared in constant time.

A key file (``ORDERSTATS_GATEWAY_KEYS_FILE``) or variable (``ORDERSTATS_GATEWAY_KEYS``,
entries separated by ``;``) holds one entry per line::

    # sha256 of the key, in hex            the stores it may submit orders for
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 s-0001,s-0002

``ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256`` names one more key that may submit for any store, and
so does ``ORDERSTATS_API_ADMIN_TOKEN`` (app/access.py: the token for changes, hashed here).
Only hashes are stored; a presented key is hashed and compared with every entry by
:func:`hmac.compare_digest` (no early exit), and a key never appears in a message or log.
Pure: no aiohttp, no Kafka.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

_HEX = re.compile(r"[0-9a-f]{64}")


class KeyFileError(ValueError):
    """The key file or variable cannot be used; the message names where and why."""


def hash_key(key: str) -> str:
    """The sha256 hex digest stored for ``key`` (``orderstats gateway --hash-key``)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Whom a request speaks for: its stores, or every store (admin / no keys configured)."""

    name: str  # "admin", "anonymous" or "key:<first 8 hex of the hash>": safe to log
    stores: frozenset[str] = frozenset()
    any_store: bool = False

    def may_submit(self, store_id: str) -> bool:
        return self.any_store or store_id in self.stores


ANONYMOUS = Principal("anonymous", any_store=True)


@dataclass(frozen=True)
class KeyRing:
    """Hashed keys and their stores; empty means no authentication (loopback only)."""

    entries: tuple[tuple[bytes, frozenset[str]], ...] = ()
    admin: bytes | None = None
    admin_token: bytes | None = None  # sha256 of ORDERSTATS_API_ADMIN_TOKEN

    @property
    def configured(self) -> bool:
        return bool(self.entries) or self.admin is not None or self.admin_token is not None

    @classmethod
    def load(cls, file: str = "", text: str = "", admin_sha256: str = "",
             admin_token: str = "") -> "KeyRing":
        entries: list[tuple[bytes, frozenset[str]]] = []
        if file:
            try:
                content = Path(file).read_text()
            except OSError as exc:
                raise KeyFileError(f"ORDERSTATS_GATEWAY_KEYS_FILE={file}: cannot read it: "
                                   f"{exc.strerror or exc}") from None
            entries += parse_entries(content.splitlines(), f"ORDERSTATS_GATEWAY_KEYS_FILE={file}")
        if text:
            entries += parse_entries(text.split(";"), "ORDERSTATS_GATEWAY_KEYS")
        admin = bytes.fromhex(admin_sha256.lower()) if admin_sha256 else None
        token = hashlib.sha256(admin_token.encode()).digest() if admin_token else None
        return cls(tuple(entries), admin, token)

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of ``presented`` (None: unknown or missing key)."""
        if not self.configured:
            return ANONYMOUS
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found: Principal | None = None
        # Every entry is compared, match or not: the time does not tell which one matched.
        if self.admin is not None and hmac.compare_digest(digest, self.admin):
            found = Principal("admin", any_store=True)
        if (self.admin_token is not None and hmac.compare_digest(digest, self.admin_token)
                and found is None):
            found = Principal("admin-token", any_store=True)
        for stored, stores in self.entries:
            if hmac.compare_digest(digest, stored) and found is None:
                found = Principal(f"key:{stored.hex()[:8]}", stores)
        return found


def parse_entries(lines: Iterable[str], where: str) -> list[tuple[bytes, frozenset[str]]]:
    """``sha256hex store1,store2`` entries; blank lines and ``#`` comments are skipped."""
    out: list[tuple[bytes, frozenset[str]]] = []
    seen: set[bytes] = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split(None, 1)
        digest = parts[0].lower()
        if not _HEX.fullmatch(digest):
            raise KeyFileError(f"{where}, entry {number}: {_mask(parts[0])} is not a sha256 "
                               "hex digest (64 hex digits; store the hash, never the key)")
        stores = frozenset(s.strip() for s in (parts[1] if len(parts) > 1 else "").split(",")
                           if s.strip())
        if not stores:
            raise KeyFileError(f"{where}, entry {number}: no stores after the hash "
                               "(sha256hex store1,store2)")
        raw = bytes.fromhex(digest)
        if raw in seen:
            raise KeyFileError(f"{where}, entry {number}: the same hash appears twice")
        seen.add(raw)
        out.append((raw, stores))
    return out


def _mask(text: str) -> str:
    """What to show of a value that may be a key pasted by mistake: its length only."""
    return f"the first field ({len(text)} characters)"


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key of ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return api_key.strip() if api_key and api_key.strip() else None
