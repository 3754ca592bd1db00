"""A TCP proxy in front of one Kafka broker that a test can cut and restore.

Clients bootstrap from the broker and then connect to the address it *advertises*, which
would bypass a plain proxy. This one rewrites the broker's advertised port in every answer
(Metadata, FindCoordinator: the 9 bytes "127.0.0.1" followed by the port as an int32,
the same length either way, so Kafka's size-prefixed frames stay valid), so every
connection of the client passes here. ``cut()`` closes every connection and refuses new
ones (connection refused, as a dead broker); ``restore()`` listens again on the same port.
Runs its own event loop in a thread, so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import struct
import threading

from tests.worker_process import free_port


class KafkaProxy:
    def __init__(self, broker_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.broker_port = broker_port
        self.port = free_port(host)
        self._find = host.encode() + struct.pack(">i", broker_port)
        self._repl = host.encode() + struct.pack(">i", self.port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    def _call(self, coro) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def start(self) -> "KafkaProxy":
        self._thread.start()
        self.restore()
        return self

    def restore(self) -> None:
        async def listen() -> None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self._call(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for w in list(self._writers):
                w.transport.abort()
            self._writers.clear()
        self._call(close())

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.broker_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._answers(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.transport.abort()

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack(">i", head)[0])
            writer.write(head + body.replace(self._find, self._repl))
            await writer.drain()
