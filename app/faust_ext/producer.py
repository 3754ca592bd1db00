"""Faust's aiokafka Producer with idempotence on, outside transactions too.

Stock ``Producer._settings_extra`` (PRIVATE) turns ``enable_idempotence`` on only inside an
exactly-once transaction. Under at-least-once a record whose acknowledgement was lost (a
broker stopped, a connection cut) is retried and written twice: a dead letter twice, a
changelog record twice. With idempotence the broker drops the retried copy (producer id and
sequence numbers); it needs ``acks=all``, which the worker sets anyway.
"""

from __future__ import annotations

from typing import Any, Mapping

from faust.transport.drivers import aiokafka as aiokafka_driver


class IdempotentProducer(aiokafka_driver.Producer):
    """Replaces ``Producer._settings_extra`` (PRIVATE) to add ``enable_idempotence``."""

    def _settings_extra(self) -> Mapping[str, Any]:  # PRIVATE override
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}
