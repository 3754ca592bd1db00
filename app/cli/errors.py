"""One line, never a traceback, when a command cannot reach Kafka."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Awaitable, Callable, TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError

from app.kafka.clients import Connection, unreachable

T = TypeVar("T")


class _BootstrapNoise(logging.Filter):
    """Drops aiokafka's per-host "Unable connect to" records: the command's line says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith('Unable connect to "')


logging.getLogger("aiokafka").addFilter(_BootstrapNoise())


def exit_on_kafka_error(conn: Callable[[], Connection]
                        ) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Decorate an async command body: Kafka errors become one line and exit status 1."""

    def decorate(body: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(body)
        async def wrapped(*args: Any, **kwargs: Any) -> T:
            try:
                return await body(*args, **kwargs)
            except (KafkaConnectionError, KafkaError, OSError) as exc:
                print(unreachable(conn(), exc), file=sys.stderr, flush=True)
                sys.exit(1)

        return wrapped

    return decorate
