"""Email templates: Jinja2, plain text + HTML, shipped in the package and
overridable file by file from a directory (``<config dir>/templates/email``).

``<name>.txt.j2`` starts with a ``Subject: ...`` line, then a blank line, then
the text part; ``<name>.html.j2`` is the HTML part (autoescaped; the rendered
subject is passed in as ``subject``). Undefined variables are errors
(StrictUndefined) and ``check()`` renders every template with sample data, so a
broken template is found at start-up, not when a customer's email is due.

No database here: callers hand in a plain context dict (see ``sample_context``
for its shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import cached_property
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    pass_context,
)
from jinja2.runtime import Context as JinjaContext
from markupsafe import Markup, escape

from pulse_tui.domain.money import format_money
from pulse_tui.domain.notifications import FREE_MESSAGE, TEMPLATES

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"
DEFAULT_LOCALE = "en_US"


class TemplateProblem(Exception):
    """A template that does not render (syntax, undefined variable, no subject)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def usable_locale(locale: str | None) -> str:
    """``locale`` if babel knows it, else en_US (a customer's odd locale never
    stops their email)."""
    if not locale:
        return DEFAULT_LOCALE
    try:
        Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        return DEFAULT_LOCALE
    return locale


@pass_context
def _money(ctx: JinjaContext, amount: int, currency: str | None = None) -> str:
    cur = currency or ctx["order"]["currency"]
    return format_money(int(amount), cur, locale=ctx["locale"])


@pass_context
def _date(ctx: JinjaContext, value: datetime | date | str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return str(format_date(value, "long", locale=ctx["locale"]))


def _address(a: dict[str, Any]) -> str:
    parts = [a.get(k) for k in ("name", "line1", "line2", "postal_code", "city", "region")]
    parts.append(a.get("country"))
    return ", ".join(str(p) for p in parts if p)


def _paragraphs(text: str) -> Markup:
    """Plain text → escaped HTML paragraphs (line breaks kept)."""
    blocks = [b.strip("\n") for b in str(text).replace("\r\n", "\n").split("\n\n")]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in b.split("\n")))
        for b in blocks
        if b.strip()
    )


class Templates:
    """The template set: overrides (if the directory exists) before the package's."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = override_dir

    @cached_property
    def env(self) -> Environment:
        loaders = []
        if self.override_dir is not None:
            loaders.append(FileSystemLoader(str(self.override_dir)))
        loaders.append(FileSystemLoader(str(PACKAGE_DIR)))
        env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        env.filters["money"] = _money
        env.filters["date"] = _date
        env.filters["address"] = _address
        env.filters["paragraphs"] = _paragraphs
        return env

    def names(self) -> list[str]:
        """Every email template: the shipped ones, plus extra ``*.txt.j2`` overrides."""
        extra: set[str] = set()
        if self.override_dir is not None and self.override_dir.is_dir():
            for p in self.override_dir.glob("*.txt.j2"):
                name = p.name[: -len(".txt.j2")]
                if not name.startswith(("_", "base")):
                    extra.add(name)
        return list(TEMPLATES) + sorted(extra - set(TEMPLATES))

    def exists(self, name: str) -> bool:
        try:
            self.env.get_template(f"{name}.txt.j2")
        except TemplateNotFound:
            return False
        return True

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Subject, text and HTML of template ``name``; TemplateProblem says what broke."""
        ctx = {**context, "locale": usable_locale(context.get("locale"))}
        try:
            raw = self.env.get_template(f"{name}.txt.j2").render(ctx)
            subject, text = _split_subject(name, raw)
            html = self.env.get_template(f"{name}.html.j2").render({**ctx, "subject": subject})
        except TemplateNotFound as exc:
            raise TemplateProblem(f"{name}: template file {exc.name} not found") from None
        except TemplateSyntaxError as exc:
            where = f"{exc.filename or exc.name}:{exc.lineno}"
            raise TemplateProblem(f"{name}: syntax error in {where}: {exc.message}") from None
        except TemplateError as exc:
            raise TemplateProblem(f"{name}: {exc}") from None
        return Rendered(subject, text, html)

    def render_block(self, name: str, block: str, context: dict[str, Any]) -> str:
        """One block of ``<name>.txt.j2`` on its own (the compose dialog's draft)."""
        ctx = {**context, "locale": usable_locale(context.get("locale"))}
        try:
            tmpl = self.env.get_template(f"{name}.txt.j2")
            fn = tmpl.blocks.get(block)
            if fn is None:
                raise TemplateProblem(f"{name}: no block {block!r}")
            return "".join(fn(tmpl.new_context(ctx))).strip("\n")
        except TemplateError as exc:
            raise TemplateProblem(f"{name}: {exc}") from None

    def check(self) -> list[str]:
        """Render every template (and the compose draft) with sample data in a
        few currencies and locales; one line per problem (empty: all fine)."""
        problems: list[str] = []
        for name in self.names():
            for sample in SAMPLES:
                try:
                    r = self.render(name, sample_context(**sample))
                    if name == FREE_MESSAGE:
                        for block in ("draft_subject", "draft_body"):
                            self.render_block(name, block, sample_context(**sample))
                except TemplateProblem as exc:
                    problems.append(str(exc))
                    break  # one line per template is enough
                if not r.subject.strip():
                    problems.append(f"{name}: the subject line is empty")
                    break
        return problems


def _split_subject(name: str, raw: str) -> tuple[str, str]:
    first, _, rest = raw.lstrip("\n").partition("\n")
    if not first.lower().startswith("subject:"):
        raise TemplateProblem(
            f"{name}: {name}.txt.j2 must start with a 'Subject: ...' line, then a blank line"
        )
    subject = " ".join(first[len("subject:") :].split())
    return subject, _tidy(rest)


def _tidy(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, one final newline."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def build_message(
    rendered: Rendered,
    *,
    from_addr: str,
    to_addr: str,
    to_name: str | None,
    message_id: str,
    date: datetime,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative email: the text part, then the HTML part."""
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = formataddr((to_name, to_addr)) if to_name else to_addr
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = message_id
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


# -- sample data (check, previews, tests) ---------------------------------------

SAMPLES: tuple[dict[str, str], ...] = (
    {"currency": "EUR", "locale": "de_DE"},
    {"currency": "JPY", "locale": "ja_JP"},
    {"currency": "KWD", "locale": "ar_KW"},
)


def sample_context(currency: str = "EUR", locale: str = "en_US") -> dict[str, Any]:
    """A context with every key a real one may hold, every optional part filled
    (so a misspelt variable anywhere in a template fails the check)."""
    scale = {"JPY": 1, "KWD": 1000}.get(currency, 100)
    placed = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    return {
        "shop": {"name": "Pulse", "from_addr": "Pulse <orders@pulse.local>"},
        "locale": locale,
        "customer": {"name": "Grace Hopper", "email": "grace@example.com", "locale": locale},
        "order": {
            "number": "PB-100042",
            "placed_at": placed,
            "status": "shipped",
            "payment_status": "paid",
            "fulfillment_status": "fulfilled",
            "currency": currency,
            "tax_inclusive": False,
            "subtotal": 37 * scale,
            "discount": 2 * scale,
            "shipping": 5 * scale,
            "tax": 7 * scale,
            "total": 47 * scale,
            "paid": 47 * scale,
            "refunded": 12 * scale,
            "item_count": 3,
            "has_physical": True,
            "cancel_reason": "customer_request",
            "shipping_address": {
                "name": "Grace Hopper",
                "line1": "1 Main Street",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        },
        "lines": [
            {
                "sku": "MUG-BLUE",
                "name": "Blue mug",
                "quantity": 2,
                "unit_price": 12 * scale,
                "line_total": 25 * scale,
                "kind": "physical",
            },
            {
                "sku": "TEE-M",
                "name": "T-shirt <M>",
                "quantity": 1,
                "unit_price": 12 * scale,
                "line_total": 12 * scale,
                "kind": "physical",
            },
        ],
        "shipment": {
            "carrier": "DHL",
            "tracking": "JD0000000042",
            "tracking_url": "https://www.dhl.com/en/express/tracking.html?AWB=JD0000000042",
        },
        "refund": {"id": 7, "amount": 12 * scale, "reason": "damaged"},
        "return": {
            "id": 3,
            "note": "Use the enclosed label.",
            "lines": [{"sku": "TEE-M", "name": "T-shirt <M>", "quantity": 1}],
        },
        "cancel_reason": "customer request",
        "message": {"subject": "About your order PB-100042", "body": "Hello Grace,\n\nThanks!"},
        "event": {},
    }


def blank_context() -> dict[str, Any]:
    """The optional parts of a context, absent (real emails fill what they know)."""
    return {
        "shipment": None,
        "refund": None,
        "return": None,
        "cancel_reason": None,
        "message": None,
        "event": {},
    }
