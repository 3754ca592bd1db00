"""The live page's files (app/web/page/), shipped in the package and served from memory.

Only the files listed here are served (no paths from the request reach the file system),
each with its own content type. The page itself gets a Content-Security-Policy that allows
scripts, styles and connections from its own worker only: no remote script can run.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources

from app.settings import Settings

STATIC_PREFIX = "/static/"
CSP = ("default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; "
       "form-action 'none'")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache", "Content-Security-Policy": CSP}

# name under /static/ -> (file in app/web/page/, content type)
FILES: dict[str, tuple[str, str]] = {
    "page.js": ("page.js", "text/javascript; charset=utf-8"),
    "page.css": ("page.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
    "vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "vendor/uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    "vendor/uPlot.LICENSE": ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


def _read(name: str) -> bytes:
    return resources.files("app.web").joinpath("page", name).read_bytes()


def load_assets() -> dict[str, Asset]:
    """Every static file, read once at start-up."""
    return {path: Asset(_read(name), ctype) for path, (name, ctype) in FILES.items()}


def render_page(settings: Settings, worker_url: str) -> str:
    """index.html with what the page needs to know (as data attributes: no inline script):
    the window size, the retention and the URL the other workers know this one by."""
    page = _read("index.html").decode()
    return (page.replace("{{window_size_s}}", html.escape(str(settings.window_size_s)))
                .replace("{{retention_s}}", html.escape(str(settings.retention_s)))
                .replace("{{worker_url}}", html.escape(worker_url)))
