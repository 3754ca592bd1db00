"""``orderstats gateway``: the HTTP gateway (app/gateway/), HTTP in, Kafka out.

Runs no Faust worker: the command only serves HTTP and produces. Any number of gateways
can run behind a load balancer; they share nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys

import faust
from aiohttp import web
from faust.cli import option

from app.gateway.app import build_app
from app.gateway.auth import KeyFileError, KeyRing, hash_key
from app.gateway.ingest import OrderSink, quiet_kafka_logs
from app.settings import Settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_keys(settings: Settings) -> KeyRing:
    """The key ring, or one line and exit 2 (a bad file, or no keys on a public bind)."""
    try:
        keys = KeyRing.load(settings.gateway_keys_file, settings.gateway_keys,
                            settings.gateway_admin_key_sha256, settings.access.admin_token)
    except KeyFileError as exc:
        sys.exit(f"error: {exc}")
    if not keys.configured and not is_loopback(settings.gateway_bind):
        sys.exit(f"error: the gateway refuses to listen on {settings.gateway_bind} without API "
                 "keys: set ORDERSTATS_GATEWAY_KEYS_FILE (or ORDERSTATS_GATEWAY_KEYS, "
                 "ORDERSTATS_GATEWAY_ADMIN_KEY_SHA256, ORDERSTATS_API_ADMIN_TOKEN), or bind "
                 "to 127.0.0.1 "
                 "(ORDERSTATS_GATEWAY_BIND)")
    return keys


async def serve(settings: Settings, port: int) -> None:
    keys = load_keys(settings)
    quiet_kafka_logs()
    sink = OrderSink(settings)
    runner = web.AppRunner(build_app(settings, keys, sink), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.gateway_bind, port)
        try:
            await site.start()
        except OSError as exc:
            sys.exit(f"error: the gateway cannot listen on {settings.gateway_bind}:{port} "
                     f"(ORDERSTATS_GATEWAY_BIND, ORDERSTATS_GATEWAY_PORT / --port): "
                     f"{exc.strerror or exc}")
        sink.start()
        auth = ("no API keys (loopback only)" if not keys.configured else
                f"{len(keys.entries)} store key(s)"
                + (" and an admin key" if keys.admin is not None else "")
                + (" and the API admin token" if keys.admin_token is not None else ""))
        print(f"gateway: listening on http://{settings.gateway_bind}:{port} -> topic "
              f"{settings.orders_topic} at {sink.conn.bootstrap}; {auth}", file=sys.stderr,
              flush=True)
        await asyncio.Event().wait()  # until the worker stops us (SIGTERM, Ctrl-C)
    finally:
        await runner.cleanup()
        await sink.close()


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        option("--port", type=int, default=None,
               help=f"Port to listen on (default ORDERSTATS_GATEWAY_PORT, "
                    f"{Settings().gateway_port})."),
        option("--hash-key", "hash_key_flag", is_flag=True,
               help="Read an API key from stdin, print its sha256 for the key file, exit."),
    )
    async def gateway(self: object, port: int | None, hash_key_flag: bool) -> None:
        """HTTP in, Kafka out: POST /orders and /orders/batch (README, "The gateway")."""
        if hash_key_flag:
            key = sys.stdin.readline().rstrip("\r\n")
            if not key:
                sys.exit("error: no key on stdin")
            print(hash_key(key))
            return
        await serve(settings, port or settings.gateway_port)
