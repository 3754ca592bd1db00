"""Adding an aiohttp middleware to a Faust worker's web server.

PRIVATE: Faust 0.15.3's aiohttp driver (faust.web.drivers.aiohttp.Web) keeps its aiohttp
``Application`` as ``web_app`` (as web_errors.py and web_access.py rely on); a middleware
appended before the web server starts sees every request after those two.
"""

from __future__ import annotations

from typing import Any

import faust


def append_middleware(app: faust.App, middleware: Any) -> None:
    """Append ``middleware`` to ``app``'s aiohttp Application (before the server starts)."""
    web_app = getattr(app.web, "web_app", None)  # PRIVATE: the 0.15.3 aiohttp driver's
    if web_app is not None and middleware not in web_app.middlewares:
        web_app.middlewares.append(middleware)
