"""Email delivery through an outbox: nothing lost when the server is down, nothing sent twice.

Every message is first written to the outbox (``<state_dir>/outbox/queued/<id>.eml``),
then the outbox is flushed. A message moves to ``sending/`` while it is handed to the
server and is deleted once the server accepted it; its Message-ID is appended to
``sent.log`` first, so a message whose id is already there is never sent again (a
crash between acceptance and deletion cannot double-send). When the server is down
the message stays queued, the caller reports it with a non-zero exit, and the next
run delivers it.

SMTP security: ``none``, ``starttls`` or ``tls`` (implicit), certificates verified
unless ``verify = false``; the password comes only from the environment variable
named by ``password_env``.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path

from vcops.config import SmtpConfig
from vcops.errors import ConfigError
from vcops.paths import ensure_state_dir


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


@dataclass(frozen=True)
class InlineImage:
    cid: str
    content: bytes
    subtype: str = "png"


def build_message(
    *,
    sender: str,
    to: list[str],
    subject: str,
    text: str,
    html: str,
    attachments: list[Attachment] | None = None,
    images: list[InlineImage] | None = None,
) -> EmailMessage:
    """multipart/mixed( multipart/alternative(text, related(html, images)), attachments )."""
    # RFC 5322 allows 998-character lines; folding a short subject right after
    # "Subject:" makes some parsers keep a leading space.
    msg = EmailMessage(policy=SMTP_POLICY.clone(max_line_length=998))
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "vcops.invalid")
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if images:
        html_part = msg.get_body(preferencelist=("html",))
        assert isinstance(html_part, MIMEPart)
        for image in images:
            html_part.add_related(
                image.content,
                maintype="image",
                subtype=image.subtype,
                cid=f"<{image.cid}>",
                disposition="inline",
                filename=f"{image.cid}.{image.subtype}",
            )
    for att in attachments or []:
        msg.add_attachment(
            att.content, maintype=att.maintype, subtype=att.subtype, filename=att.filename
        )
    return msg


class Outbox:
    """A directory of queued messages."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.queued = root / "queued"
        self.sending = root / "sending"
        self.sent_log = root / "sent.log"
        ensure_state_dir(root.parent)
        for d in (self.queued, self.sending):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    def enqueue(self, msg: EmailMessage) -> Path:
        name = f"{uuid.uuid4().hex}.eml"
        tmp = self.root / f".{name}.tmp"
        tmp.write_bytes(msg.as_bytes())
        path = self.queued / name
        os.replace(tmp, path)
        return path

    def pending(self) -> list[Path]:
        # Messages left in sending/ by a crash go back to the queue (the sent log guards them).
        for stuck in self.sending.glob("*.eml"):
            os.replace(stuck, self.queued / stuck.name)
        return sorted(self.queued.glob("*.eml"), key=lambda p: p.stat().st_mtime)

    def _sent_ids(self) -> set[str]:
        if not self.sent_log.exists():
            return set()
        return {line.split(" ", 1)[0] for line in self.sent_log.read_text().splitlines() if line}

    def flush(self, cfg: SmtpConfig) -> tuple[int, list[str]]:
        """Send every queued message. Returns (sent, errors); stops at the first connection failure."""
        from email import message_from_bytes
        from email.policy import default

        queued = self.pending()
        if not queued:
            return 0, []
        already = self._sent_ids()
        sent = 0
        try:
            smtp = connect(cfg)
        except (OSError, smtplib.SMTPException) as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
            kept = f"{len(queued)} message(s) kept in {self.queued}"
            return 0, [f"SMTP {cfg.host}:{cfg.port} unreachable ({reason}); {kept}"]
        errors: list[str] = []
        with smtp:
            for path in queued:
                data = path.read_bytes()
                msg = message_from_bytes(data, policy=default)
                msg_id = str(msg.get("Message-ID", path.name))
                if msg_id in already:
                    path.unlink()
                    continue
                inflight = self.sending / path.name
                os.replace(path, inflight)
                try:
                    recipients = [a.strip() for a in str(msg.get("To", "")).split(",") if a.strip()]
                    smtp.sendmail(str(msg.get("From")), recipients, data)
                except smtplib.SMTPException as exc:
                    os.replace(inflight, path)
                    errors.append(f"{path.name}: refused by the server: {exc}")
                    continue
                with self.sent_log.open("a") as log:
                    log.write(f"{msg_id} {msg.get('Subject', '')}\n")
                inflight.unlink()
                sent += 1
        return sent, errors


def connect(cfg: SmtpConfig) -> smtplib.SMTP:
    """An authenticated SMTP connection per the configuration."""
    context = ssl.create_default_context(cafile=cfg.cafile) if cfg.security != "none" else None
    if context is not None and not cfg.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    smtp: smtplib.SMTP
    if cfg.security == "tls":
        smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=context)
    else:
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        if cfg.security == "starttls":
            smtp.starttls(context=context)
    if cfg.username:
        if not cfg.password_env or cfg.password_env not in os.environ:
            smtp.close()
            raise ConfigError(
                f"smtp.username is set but ${cfg.password_env or 'password_env'} is not; export it"
            )
        smtp.login(cfg.username, os.environ[cfg.password_env])
    return smtp


def deliver(msg: EmailMessage, outbox: Outbox, cfg: SmtpConfig) -> tuple[int, list[str]]:
    """Queue the message, then flush the whole outbox (older messages first)."""
    outbox.enqueue(msg)
    return outbox.flush(cfg)
