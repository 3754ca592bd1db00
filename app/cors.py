"""Cross-origin reads of the workers' API: off unless ``ORDERSTATS_CORS_ORIGINS`` lists origins.

The page is served by the worker it reads (same origin), so it needs no CORS. Another site's
script may read the API only if its origin is listed: then a preflight is answered and
``Access-Control-Allow-Origin`` names that origin (never ``*``) on its answers. Credentials
(the page's cookie) are never allowed cross-origin: such a script sends ``Authorization``.
Pure: no aiohttp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

VAR = "ORDERSTATS_CORS_ORIGINS"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
ALLOW_METHODS = "GET, HEAD"  # the workers' API only reads
ALLOW_HEADERS = "Authorization"
MAX_AGE_S = "600"


@dataclass(frozen=True)
class Cors:
    """The origins allowed to read cross-origin (empty: CORS off, no header is ever sent)."""

    origins: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Cors":
        """``https://a.example,http://127.0.0.1:8080``; raises ValueError on a bad entry."""
        origins = set()
        for raw in (env.get(VAR) or "").split(","):
            origin = raw.strip().rstrip("/").lower()
            if not origin:
                continue
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{VAR}: {raw.strip()!r} is not an origin "
                                 "(scheme://host[:port], e.g. https://shop.example)")
            origins.add(origin)
        return cls(frozenset(origins))

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and origin.lower() in self.origins

    def headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an answer to ``origin``: none when CORS is off."""
        if not self.origins:
            return {}
        vary = {"Vary": "Origin"}  # the answer differs by origin: caches must know
        return {"Access-Control-Allow-Origin": origin, **vary} if self.allows(origin) else vary

    def preflight(self, origin: str | None) -> dict[str, str] | None:
        """Headers answering a preflight from ``origin``, or None if it is not allowed."""
        if not self.allows(origin):
            return None
        return {**self.headers(origin), "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": MAX_AGE_S}
