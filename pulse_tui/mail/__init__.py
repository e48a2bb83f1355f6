"""Outgoing email: templates (Jinja2) and backends (file, SMTP). No database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .backends import FileBackend, MailBackend, MailError, SmtpBackend, eml_name
from .templates import Rendered, TemplateProblem, Templates, build_message, sample_context

if TYPE_CHECKING:
    from pulse_tui.config import Settings


def backend_from_settings(settings: Settings) -> MailBackend:
    """The backend ``[mail]`` asks for: file (default; ``Settings.mail_dir()``) or smtp."""
    m = settings.mail
    if m.backend == "smtp":
        return SmtpBackend(
            m.host,
            m.smtp_port,
            security=m.security,
            username=m.username,
            password=m.password,
            timeout=m.timeout_s,
        )
    return FileBackend(settings.mail_dir())


__all__ = [
    "FileBackend",
    "MailBackend",
    "MailError",
    "Rendered",
    "SmtpBackend",
    "TemplateProblem",
    "Templates",
    "backend_from_settings",
    "build_message",
    "eml_name",
    "sample_context",
]
