"""The mailer's two backends: the dev outbox (files) and SMTP (against a real local SMTP listener)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path

from services.auth.config import AuthConfig
from services.auth.mailer import OutboxMailer, SmtpMailer, make_mailer


class TinySmtpServer:
    """Just enough SMTP (RFC 5321 happy path, no TLS) to receive what the mailer sends."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.received = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await say("220 tiny ESMTP")
        while line := await reader.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            if verb == "EHLO":
                await say("250 tiny")
            elif verb == "DATA":
                await say("354 go ahead")
                self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                await say("250 queued")
                self.received.set()
            elif verb == "QUIT":
                await say("221 bye")
                break
            else:  # MAIL, RCPT, RSET, NOOP
                await say("250 ok")
        writer.close()


async def test_smtp_backend_delivers(tmp_path: Path) -> None:
    server = TinySmtpServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        config = AuthConfig.from_env(
            tmp_path,
            {"ATRIUM_SMTP_HOST": "127.0.0.1", "ATRIUM_SMTP_PORT": str(port), "ATRIUM_SMTP_STARTTLS": "0"},
        )
        mailer = make_mailer(config)
        assert isinstance(mailer, SmtpMailer)
        await mailer.send(
            "someone@example.com", "Hello", "the body\n"
        )  # returns at once; delivery in background
        await asyncio.wait_for(server.received.wait(), 20)
    finally:
        listener.close()
    msg = email.message_from_bytes(server.messages[0], policy=email.policy.default)
    assert (
        msg["To"] == "someone@example.com" and msg["Subject"] == "Hello" and "the body" in msg.get_content()
    )
    assert not (tmp_path / "mail").exists()


async def test_outbox_backend_writes_private_eml_files(tmp_path: Path) -> None:
    mailer = make_mailer(AuthConfig.from_env(tmp_path, {}))
    assert isinstance(mailer, OutboxMailer)
    await mailer.send("someone@example.com", "Hi", "a link: http://x/y?token=abc\n")
    [path] = list((tmp_path / "mail").glob("*.eml"))
    assert path.stat().st_mode & 0o077 == 0
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "someone@example.com" and "token=abc" in msg.get_content()
