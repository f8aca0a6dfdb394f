"""The lab's SMTP server: aiosmtpd on 127.0.0.1:2525 delivering into a Maildir.

Read what vcops sent with :func:`read_mail` (or any Maildir reader) on
``/var/lib/vcops-lab/mail``.
"""

from __future__ import annotations

import importlib.util
import mailbox
import socket
import sys
from email.message import Message
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.layout import MAILDIR, SMTP_HOST, SMTP_LOG, SMTP_PORT
from vcops.lab.state import SmtpState
from vcops.lab.system import ProcessRef, spawn_detached


def aiosmtpd_available() -> bool:
    """Whether aiosmtpd can be imported by this Python."""
    return importlib.util.find_spec("aiosmtpd") is not None


def check_smtp_port_free() -> None:
    """Make sure nothing already listens on 127.0.0.1:2525.

    Raises:
        LabError: the port is taken.
    """
    try:
        with socket.create_connection((SMTP_HOST, SMTP_PORT), timeout=1.0):
            pass
    except OSError:
        return
    raise LabError(
        f"{SMTP_HOST}:{SMTP_PORT} is already in use; stop whatever listens there, then retry"
    )


def new_smtp_state() -> SmtpState:
    """Where the SMTP server listens and stores mail; nothing is started yet."""
    return SmtpState(host=SMTP_HOST, port=SMTP_PORT, maildir=MAILDIR, log=SMTP_LOG)


def smtp_argv(smtp: SmtpState) -> list[str]:
    """The aiosmtpd command for ``smtp``."""
    return [
        sys.executable,
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        f"{smtp.host}:{smtp.port}",
        "-c",
        "aiosmtpd.handlers.Mailbox",
        str(smtp.maildir),
    ]


def start_smtp(smtp: SmtpState) -> ProcessRef:
    """Create the Maildir and start aiosmtpd detached.

    Raises:
        LabError: aiosmtpd cannot be started.
    """
    for sub in ("cur", "new", "tmp"):
        (smtp.maildir / sub).mkdir(parents=True, exist_ok=True)
    return spawn_detached(smtp_argv(smtp), log=smtp.log)


def read_mail(maildir: Path = MAILDIR) -> list[Message]:
    """Every message the lab's SMTP server has received, oldest first."""
    box = mailbox.Maildir(maildir, create=False)
    keyed = sorted(box.iteritems(), key=lambda item: item[1].get_date())
    return [message for _key, message in keyed]
