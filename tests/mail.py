"""A real SMTP server on loopback (aiosmtpd), for the proofs that send mail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from .projects import free_port


@dataclass
class SMTPServer:
    """What the server received: each message's bytes, in order of arrival."""

    port: int
    messages: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[SMTPServer]:
    """An SMTP server on 127.0.0.1 (on `port`, or a free one) until the block ends."""
    server = SMTPServer(port=port or free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
