"""Query-parameter parsing for the API: every bad value becomes a 4xx with a clear message."""

from __future__ import annotations

from typing import Mapping

from app.timefmt import parse_iso_ms


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", f"{name} must be between {low} and {high}")
    return value


def time_param(query: Mapping[str, str], name: str) -> int:
    """A required ISO-8601 time with offset, as epoch milliseconds."""
    raw = query.get(name)
    if raw is None:
        raise ApiError(400, "missing_parameter", f"{name} is required (ISO-8601, e.g. "
                       "2026-11-22T12:00:00Z)")
    try:
        return parse_iso_ms(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"{name}: {exc}") from None


def choice_param(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = query.get(name, choices[0])
    if raw not in choices:
        raise ApiError(400, "bad_parameter",
                       f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def store_id_param(raw: str) -> str:
    if not raw or len(raw) > 200:
        raise ApiError(400, "bad_parameter", "store_id must be 1..200 characters")
    return raw
