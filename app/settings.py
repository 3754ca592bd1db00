"""All configuration, read once from environment variables with documented defaults.

Every knob of the product lives here so that the README's configuration table, the Faust app
and the tests agree on one source of truth.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, TypeVar

from app.access import Access
from app.cors import Cors
from app.event_mapping import EventMapping
from app.security import Security
from app.window_config import WindowConfig, window_config

T = TypeVar("T")


class SettingsError(ValueError):
    """A configuration variable holds a value the product cannot use."""


def _read(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T],
          check: Callable[[T], bool] = lambda _v: True, rule: str = "") -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {parse.__name__}") from None
    if not check(value):
        raise SettingsError(f"{name}={raw!r}: {rule}")
    return value


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_flag.__name__ = "flag (1/0, true/false)"


def _security(env: Mapping[str, str]) -> Security:
    try:
        return Security.from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _access(env: Mapping[str, str]) -> tuple[Access, Cors]:
    """The HTTP tokens and CORS origins (app/access.py, app/cors.py)."""
    try:
        return Access.from_env(env), Cors.from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _mapping(env: Mapping[str, str]) -> EventMapping:
    try:
        return EventMapping.from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _sha256(env: Mapping[str, str], name: str) -> str:
    """A SHA-256 hex digest; the value is never echoed (it may be a key pasted by mistake)."""
    raw = (env.get(name) or "").strip()
    if raw and not re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        raise SettingsError(f"{name}: must be the SHA-256 of the key (64 hex digits; "
                            "`orderstats gateway --hash-key` prints it), not the key itself; "
                            "the value is not shown")
    return raw.lower()


def _positive(v: float) -> bool:
    return v > 0


@dataclass(frozen=True)
class Settings:
    """The product's configuration (see README, "Configuration")."""

    broker: str = "kafka://127.0.0.1:9092"
    app_id: str = "orderstats"
    orders_topic: str = "orders"
    dlq_topic: str = "orders-dlq"
    partitions: int = 8
    window_size_s: int = 60
    retention_s: int = 24 * 3600
    dedup_horizon_s: int = 24 * 3600
    web_bind: str = "127.0.0.1"
    web_host: str = ""
    web_port: int = 6066
    data_dir: str = "orderstats-data"
    batch_max: int = 10_000
    batch_within_s: float = 0.1
    rocksdb_cache_mb: int = 64
    standby_replicas: int = 1
    replication_factor: int = 1  # of every topic the app creates (changelogs, DLQ, ...)
    session_timeout_s: float = 10.0
    # After a shadow rebuild's switch, an old epoch's worker forwards this long, then stops
    retire_after_s: float = 30.0
    fast_consumer: bool = True
    event_loop: str = "uvloop"
    key_format: str = "raw"
    tracemalloc_file: str = ""  # a diagnostic: app/memtrace.py
    # orderstats gateway (app/gateway/): HTTP in, Kafka out
    gateway_bind: str = "127.0.0.1"
    gateway_port: int = 6070
    gateway_keys_file: str = ""  # lines "sha256hex store1,store2"
    gateway_keys: str = ""  # the same entries, separated by ";"
    gateway_admin_key_sha256: str = ""
    gateway_produce_timeout_s: float = 5.0
    gateway_batch_max_lines: int = 1000
    gateway_batch_max_bytes: int = 1024 * 1024
    test_batch_delay_s: float = 0.0  # TEST KNOB (benchmark): sleep per agent batch
    security: Security = field(default_factory=Security)
    access: Access = field(default_factory=Access)  # HTTP tokens; repr leaves them out
    cors: Cors = field(default_factory=Cors)
    mapping: EventMapping = field(default_factory=EventMapping)
    windows: WindowConfig = field(default_factory=WindowConfig)  # rollups, zone, grace

    @property
    def advertised_host(self) -> str:
        """The host other workers use to reach this one (defaults to the bind address)."""
        if self.web_host:
            return self.web_host
        return "127.0.0.1" if self.web_bind in ("0.0.0.0", "::") else self.web_bind

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from ``ORDERSTATS_*`` variables; unset ones take the defaults."""
        e = os.environ if env is None else env
        d = cls()
        access, cors = _access(e)
        stream = _stream_fields(e, d)
        try:
            base_s, windows = window_config(
                e, stream["window_size_s"] if e.get("ORDERSTATS_WINDOW_SIZE_S") else None)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if base_s is not None:
            stream["window_size_s"] = base_s
        return cls(**stream, **_gateway_fields(e, d), security=_security(e),
                   access=access, cors=cors, mapping=_mapping(e), windows=windows)

    def __post_init__(self) -> None:
        if self.retention_s < self.window_size_s:
            raise SettingsError("ORDERSTATS_RETENTION_S must be at least one window")


def _stream_fields(e: Mapping[str, str], d: Settings) -> dict:
    """The workers' knobs: broker, topics, windows, web, batching, runtime."""
    return dict(
        broker=_read(e, "ORDERSTATS_BROKER", d.broker, str),
        app_id=_read(e, "ORDERSTATS_APP_ID", d.app_id, str),
        orders_topic=_read(e, "ORDERSTATS_ORDERS_TOPIC", d.orders_topic, str),
        dlq_topic=_read(e, "ORDERSTATS_DLQ_TOPIC", d.dlq_topic, str),
        partitions=_read(e, "ORDERSTATS_PARTITIONS", d.partitions, int,
                         lambda v: 1 <= v <= 10_000, "must be between 1 and 10000"),
        window_size_s=_read(e, "ORDERSTATS_WINDOW_SIZE_S", d.window_size_s, int,
                            lambda v: 1 <= v <= 7 * 86400, "must be 1..604800 seconds"),
        retention_s=_read(e, "ORDERSTATS_RETENTION_S", d.retention_s, int, _positive,
                          "must be positive"),
        dedup_horizon_s=_read(e, "ORDERSTATS_DEDUP_HORIZON_S", d.dedup_horizon_s, int,
                              lambda v: v >= 0, "must be >= 0"),
        web_bind=_read(e, "ORDERSTATS_WEB_BIND", d.web_bind, str),
        web_host=_read(e, "ORDERSTATS_WEB_HOST", d.web_host, str),
        web_port=_read(e, "ORDERSTATS_WEB_PORT", d.web_port, int,
                       lambda v: 0 < v < 65536, "must be a TCP port"),
        data_dir=_read(e, "ORDERSTATS_DATA_DIR", d.data_dir, str),
        batch_max=_read(e, "ORDERSTATS_BATCH_MAX", d.batch_max, int,
                        lambda v: 1 <= v <= 1_000_000, "must be 1..1000000"),
        batch_within_s=_read(e, "ORDERSTATS_BATCH_WITHIN_S", d.batch_within_s, float,
                             _positive, "must be positive"),
        rocksdb_cache_mb=_read(e, "ORDERSTATS_ROCKSDB_CACHE_MB", d.rocksdb_cache_mb, int,
                               _positive, "must be positive"),
        standby_replicas=_read(e, "ORDERSTATS_STANDBY_REPLICAS", d.standby_replicas, int,
                               lambda v: v >= 0, "must be >= 0"),
        replication_factor=_read(e, "ORDERSTATS_REPLICATION_FACTOR", d.replication_factor,
                                 int, lambda v: 1 <= v <= 32, "must be 1..32"),
        session_timeout_s=_read(e, "ORDERSTATS_SESSION_TIMEOUT_S", d.session_timeout_s,
                                float, lambda v: 6 <= v <= 300, "must be 6..300 seconds"),
        retire_after_s=_read(e, "ORDERSTATS_RETIRE_AFTER_S", d.retire_after_s, float,
                             lambda v: 0 <= v <= 86400, "must be 0..86400 seconds"),
        fast_consumer=_read(e, "ORDERSTATS_FAST_CONSUMER", d.fast_consumer, _flag),
        event_loop=_read(e, "ORDERSTATS_EVENT_LOOP", d.event_loop, str,
                         lambda v: v in ("uvloop", "asyncio"), "must be uvloop or asyncio"),
        tracemalloc_file=_read(e, "ORDERSTATS_TRACEMALLOC_FILE", d.tracemalloc_file, str),
        key_format=_read(e, "ORDERSTATS_KEY_FORMAT", d.key_format, str,
                         lambda v: v in ("raw", "json"), "must be raw or json"),
        test_batch_delay_s=_read(e, "ORDERSTATS_TEST_BATCH_DELAY_S", d.test_batch_delay_s,
                                 float, lambda v: v >= 0, "must be >= 0"),
    )


def _gateway_fields(e: Mapping[str, str], d: Settings) -> dict:
    """``orderstats gateway``'s knobs."""
    return dict(
        gateway_bind=_read(e, "ORDERSTATS_GATEWAY_BIND", d.gateway_bind, str),
        gateway_port=_read(e, "ORDERSTATS_GATEWAY_PORT", d.gateway_port, int,
                           lambda v: 0 < v < 65536, "must be a TCP port"),
        gateway_keys_file=_read(e, "ORDERSTATS_GATEWAY_KEYS_FILE", d.gateway_keys_file, str),
        gateway_keys=_read(e, "ORDERSTATS_GATEWAY_KEYS", d.gateway_keys, str),
        gateway_admin_key_sha256=_sha256(e, "ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256"),
        gateway_produce_timeout_s=_read(
            e, "ORDERSTATS_GATEWAY_PRODUCE_TIMEOUT_S", d.gateway_produce_timeout_s, float,
            lambda v: 0 < v <= 300, "must be 0..300 seconds"),
        gateway_batch_max_lines=_read(
            e, "ORDERSTATS_GATEWAY_BATCH_MAX_LINES", d.gateway_batch_max_lines, int,
            lambda v: 1 <= v <= 100_000, "must be 1..100000"),
        gateway_batch_max_bytes=_read(
            e, "ORDERSTATS_GATEWAY_BATCH_MAX_BYTES", d.gateway_batch_max_bytes, int,
            lambda v: 1024 <= v <= 64 * 1024 * 1024, "must be 1 KiB..64 MiB"),
    )
