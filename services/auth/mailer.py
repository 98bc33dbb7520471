"""Outgoing mail: a dev outbox (one `.eml` file per mail under `<data>/mail`) or SMTP.

`atrium` picks SMTP when `ATRIUM_SMTP_HOST` is set, the outbox otherwise. Links in mails carry
single-use tokens, so the log line names the outbox file, never the link itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from services.kit.logging import log_fields

from .config import AuthConfig

log = logging.getLogger("atrium.auth.mail")


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="atrium.local")
    msg.set_content(body)
    return msg


class OutboxMailer:
    """Development backend: writes each mail to `<dir>/<time>-<id>.eml` (mode 0600)."""

    def __init__(self, directory: Path, sender: str):
        self.directory = directory
        self.sender = sender

    async def send(self, to: str, subject: str, body: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        data = bytes(build_message(self.sender, to, subject, body))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        log_fields(
            log,
            logging.INFO,
            "mail written to the dev outbox; open it for the link",
            path=str(path),
            subject=subject,
        )


class SmtpMailer:
    """Sends in the background so a slow relay neither blocks a request nor reveals (by timing)
    whether a forgot-password request matched an account."""

    def __init__(self, config: AuthConfig):
        self.config = config
        self._pending: set[asyncio.Task[None]] = set()

    def _deliver(self, msg: EmailMessage) -> None:
        c = self.config
        with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=20) as smtp:
            if c.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if c.smtp_user:
                smtp.login(c.smtp_user, c.smtp_password)
            smtp.send_message(msg)

    async def send(self, to: str, subject: str, body: str) -> None:
        msg = build_message(self.config.mail_from, to, subject, body)

        async def deliver() -> None:
            try:
                await asyncio.to_thread(self._deliver, msg)
                log_fields(log, logging.INFO, "mail sent", subject=subject, host=self.config.smtp_host)
            except Exception as exc:
                log_fields(
                    log,
                    logging.ERROR,
                    "mail could not be sent",
                    subject=subject,
                    host=self.config.smtp_host,
                    error=type(exc).__name__,
                )

        task = asyncio.create_task(deliver())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


def make_mailer(config: AuthConfig) -> Mailer:
    if config.smtp_host:
        return SmtpMailer(config)
    return OutboxMailer(config.mail_dir, config.mail_from)
