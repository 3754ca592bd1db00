"""Which local process is the broker, so its CPU can be measured beside each contender's."""

from __future__ import annotations

import psutil


def find_broker_pid(broker: str) -> int:
    """The pid of the process listening on ``broker``'s port on this machine (0 if none
    is visible: a remote broker, or one of another user)."""
    port = int(broker.rsplit(":", 1)[1])
    try:
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.Error:
        pass
    return 0
