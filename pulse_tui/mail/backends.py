"""Mail backends: how a built email leaves. No database access (like gateways/).

``send`` returns when the email is handed over, or raises ``MailError`` saying
whether trying again later could help (``permanent=False``: connection refused,
timeout, SMTP 4xx) or not (``permanent=True``: SMTP 5xx, refused recipient).
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Protocol

from pulse_tui.domain.notifications import classify_smtp


class MailError(Exception):
    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class MailBackend(Protocol):
    name: str

    def send(self, msg: EmailMessage) -> None: ...

    def close(self) -> None: ...


_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


def eml_name(message_id: str) -> str:
    """The file name of an email: its Message-ID, made safe for any file system."""
    core = message_id.strip().strip("<>")
    return _UNSAFE.sub("_", core)[:200] + ".eml"


class FileBackend:
    """Writes ``<message-id>.eml`` into ``directory`` (the default, and the
    demo's). The name is the Message-ID, so sending the same email twice (a
    retry after a crash) finds the file there and writes no second one; the
    file appears whole or not at all (written aside, then linked in place)."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, msg: EmailMessage) -> Path:
        return self.path_for_id(str(msg["Message-ID"] or ""))

    def path_for_id(self, message_id: str) -> Path:
        return self.directory / eml_name(message_id)

    def send(self, msg: EmailMessage) -> None:
        if not msg["Message-ID"]:
            raise MailError("the email has no Message-ID", permanent=True)
        target = self.path_for(msg)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if target.exists():
                return  # this very email was written before
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(msg.as_bytes())
                    fh.flush()
                    os.fsync(fh.fileno())
                with contextlib.suppress(FileExistsError):  # another sender won the race
                    os.link(tmp, target)
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise MailError(
                f"cannot write {target}: {exc.strerror or exc}", permanent=False
            ) from None

    def close(self) -> None:
        pass


class SmtpBackend:
    """SMTP via smtplib: ``security`` "starttls", "ssl" or "none"; logs in when
    a username is set. One connection is kept for a batch and reopened after
    an error; ``close()`` ends it."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"security must be none, starttls or ssl, not {security!r}")
        self.host, self.port, self.security = host, port, security
        self.username, self._password = username, password
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None

    def __repr__(self) -> str:  # never the password
        return f"SmtpBackend({self.host!r}, {self.port}, security={self.security!r})"

    def _connect(self) -> smtplib.SMTP:
        ctx = self.ssl_context or ssl.create_default_context()
        conn: smtplib.SMTP
        if self.security == "ssl":
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            conn.ehlo()
            if self.security == "starttls":
                conn.starttls(context=ctx)
                conn.ehlo()
            if self.username:
                conn.login(self.username, self._password or "")
        except BaseException:
            _quietly_close(conn)
            raise
        return conn

    def send(self, msg: EmailMessage) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            refused = self._conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset()
            raise _refused(exc.recipients) from None
        except smtplib.SMTPResponseException as exc:
            self._drop()
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            f = classify_smtp(exc.smtp_code, " ".join(text.split()))
            raise MailError(f.message, f.permanent) from None
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
            self._drop()
            raise MailError(f"SMTP {self.host}:{self.port}: {exc}", permanent=False) from None
        except smtplib.SMTPException as exc:
            self._drop()
            raise MailError(f"SMTP {self.host}:{self.port}: {exc}", permanent=False) from None
        except (TimeoutError, OSError) as exc:  # refused, unreachable, timeout, TLS
            self._drop()
            what = exc.strerror or str(exc) or type(exc).__name__
            raise MailError(f"SMTP {self.host}:{self.port}: {what}", permanent=False) from None
        if refused:
            raise _refused(refused)

    def _reset(self) -> None:
        """After a refused recipient the connection is fine: RSET and keep it."""
        if self._conn is None:
            return
        try:
            self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            _quietly_close(self._conn)
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                _quietly_close(self._conn)
                self._conn = None


def _refused(recipients: dict[str, tuple[int, bytes]]) -> MailError:
    """A recipient refused: 5xx is for good, 4xx (mailbox busy, greylisting) is not."""
    failures = []
    for addr, (code, text) in recipients.items():
        msg = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        failures.append((addr, classify_smtp(code, " ".join(msg.split()))))
    permanent = all(f.permanent for _a, f in failures)
    reason = "; ".join(f"{a}: {f.message}" for a, f in failures)
    return MailError(f"recipient refused: {reason}", permanent=permanent)


def _quietly_close(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        conn.close()


def recipients_of(msg: EmailMessage) -> list[str]:
    return [a for _n, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))]
