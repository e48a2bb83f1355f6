from __future__ import annotations

from datetime import timedelta

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pulse_tui.config import NOTIFY_EVENTS
from pulse_tui.domain import notifications as n
from pulse_tui.domain.status import FulfillmentStatus, OrderState, OrderStatus, PaymentStatus


def test_every_notifying_event_has_a_shipped_template_and_a_config_name() -> None:
    assert set(n.EVENT_TEMPLATES) == set(NOTIFY_EVENTS)
    assert set(n.EVENT_TEMPLATES.values()) | {n.FREE_MESSAGE} == set(n.TEMPLATES)


def test_template_for_respects_the_configured_events() -> None:
    assert n.template_for("shipped") == "shipped"
    assert n.template_for("refund_succeeded") == "refund_issued"
    assert n.template_for("note") is None
    assert n.template_for("shipped", frozenset({"placed"})) is None
    assert n.template_for("placed", frozenset({"placed"})) == "order_confirmation"


def test_backoff_doubles_from_30_seconds_up_to_an_hour() -> None:
    waits = [n.backoff(i) for i in range(1, 10)]
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits[-1] == timedelta(hours=1) and n.backoff(100) == timedelta(hours=1)
    assert all(a <= b for a, b in zip(waits, waits[1:], strict=False))
    assert n.should_give_up(8, 8) and not n.should_give_up(7, 8)


@pytest.mark.parametrize(
    ("code", "permanent"),
    [(550, True), (553, True), (554, True), (421, False), (451, False), (452, False)],
)
def test_smtp_replies_5xx_are_permanent_4xx_temporary(code: int, permanent: bool) -> None:
    f = n.classify_smtp(code, "text")
    assert f.permanent is permanent and f.message == f"{code} text"


def test_authentication_failure_is_not_the_customers_fault() -> None:
    f = n.classify_smtp(535, "5.7.8 bad credentials")
    assert not f.permanent and "authentication" in f.message


def test_tracking_urls_per_carrier() -> None:
    assert (
        n.tracking_url("DHL", "JD 1") == "https://www.dhl.com/en/express/tracking.html?AWB=JD%201"
    )
    assert n.tracking_url("royal  mail", "AB1").startswith("https://www.royalmail.com/")  # type: ignore[union-attr]
    assert n.tracking_url("Owl Post", "1") is None
    assert n.tracking_url("UPS", "") is None


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("grace@example.com", True),
        ("  Grace@Example.COM ", True),
        ("", False),
        ("no-at-sign", False),
        ("a@b", False),
        ("x@pulse.local", False),
    ],
)
def test_address_problem(address: str, ok: bool) -> None:
    assert (n.address_problem(address) is None) is ok


def test_normalize_email_lowercases_the_domain() -> None:
    assert n.normalize_email(" Grace@Example.COM ") == "Grace@example.com"
    with pytest.raises(n.AddressError, match="no email address"):
        n.normalize_email("  ")


def test_template_problem_for_sending_by_hand() -> None:
    pending = OrderState(OrderStatus.PENDING)
    shipped = OrderState(OrderStatus.SHIPPED, PaymentStatus.PAID, FulfillmentStatus.FULFILLED)
    assert n.template_problem("order_confirmation", pending) is None
    assert n.template_problem("free_message", pending) is None
    assert n.template_problem("shipped", pending) == "not shipped"
    assert n.template_problem("payment_received", pending) == "not paid"
    assert n.template_problem("shipped", shipped) is None
    assert n.template_problem("delivered", shipped) == "not delivered"
    assert n.template_problem("refund_issued", shipped) == "nothing refunded"
    assert "unknown template" in (n.template_problem("welcome", pending) or "")


def test_message_ids() -> None:
    assert n.message_id_domain("Pulse <orders@shop.example>") == "shop.example"
    assert n.message_id_domain("nobody") == "pulse.local"
    assert n.message_id("abc", "shop.example") == "<pulse.abc@shop.example>"


_LOCAL = st.from_regex(r"\A[A-Za-z0-9._%+'!#~-]{1,70}\Z")
_LABEL = st.from_regex(r"\A[A-Za-z0-9-]{1,12}\Z")
_DOMAIN = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=4).map(".".join),
    st.sampled_from(
        [
            "Example.COM",
            "gmail.com",
            "pulse.local",
            "localhost",
            "example.test",
            "xn--mller-kva.de",
            "müller.de",
            "[192.168.0.1]",
            "a..b.com",
            "-a.com",
            "a.123",
            "x" * 64 + ".com",
            ("abcdefghi." * 25) + "com",
        ]
    ),
)
_ADDRESS = st.one_of(
    st.builds(lambda lo, d: f"{lo}@{d}", _LOCAL, _DOMAIN),
    st.builds(
        lambda lo, d: f"{lo}@{d}",
        st.sampled_from(["Postmaster", "ABUSE", '"quoted"', "jürgen", "a b", ".a", "a."]),
        _DOMAIN,
    ),
    st.emails().map(str),
    st.text(max_size=30),
)


def _library_answer(address: str) -> str:
    """What email-validator itself says, in normalize_email's terms."""
    text = address.strip()
    if not text:
        return "error: " + n.NO_ADDRESS
    try:
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        return f"error: invalid email address {text!r}: {exc}"


@settings(max_examples=400, deadline=None)
@given(_ADDRESS)
@example("a" * 60 + "@" + "abcdefghi." * 20 + "com")  # valid domain, address too long
@example("a" * 65 + "@example.com")  # a long local part (allowed unless strict)
def test_normalize_email_answers_as_email_validator_does(address: str) -> None:
    """The per-domain fast path gives email-validator's own answer, message included."""
    try:
        got = n.normalize_email(address)
    except n.AddressError as exc:
        got = f"error: {exc}"
    assert got == _library_answer(address)
