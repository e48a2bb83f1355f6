"""Templates: overrides from the config directory, and check() finding what
would break at send time."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from pulse_tui.domain.notifications import TEMPLATES
from pulse_tui.mail import FileBackend, TemplateProblem, Templates, sample_context
from pulse_tui.services.desk import Desk
from pulse_tui.services.notifications import MailSender
from tests import factories

from .conftest import Clock, mail_settings


def test_the_shipped_templates_pass_the_check() -> None:
    assert Templates().check() == []


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_renders_subject_text_and_html(name: str) -> None:
    r = Templates().render(name, sample_context("KWD", "ar_KW"))
    assert r.subject and "PB-100042" in r.text + r.subject
    assert r.html.lstrip().startswith("<!DOCTYPE html>")
    assert "<M>" not in r.html  # product names are escaped in HTML


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Subject: Hi {{ order.number }\n\nbody", "shipped.txt.j2:1: unexpected '}'"),
        ("Subject: Hi {{ order.numbr }}\n\nbody", "has no attribute 'numbr'"),
        ("Subject: Hi\n\n{{ tracking_link }}", "'tracking_link' is undefined"),
        ("Hello {{ customer.name }}", "must start with a 'Subject: ...' line"),
        ("{% extends 'nope.txt.j2' %}", "nope.txt.j2 not found"),
    ],
)
def test_check_catches_a_broken_override(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "shipped.txt.j2").write_text(text)
    problems = Templates(tmp_path).check()
    assert len(problems) == 1
    assert problems[0].startswith("shipped: ") and expected in problems[0]
    if "syntax" in problems[0]:  # names the file to fix: the override, not the package's
        assert str(tmp_path / "shipped.txt.j2") in problems[0]


def test_check_catches_a_broken_html_override_and_an_extra_template(tmp_path: Path) -> None:
    (tmp_path / "delivered.html.j2").write_text("{% block body %}{{ shipment.trakcing }}")
    (tmp_path / "welcome_back.txt.j2").write_text("Subject: {{ oops }}\n\nHi")
    problems = Templates(tmp_path).check()
    assert [p.split(":")[0] for p in problems] == ["delivered", "welcome_back"]


def test_render_raises_template_problem_not_a_jinja_error(tmp_path: Path) -> None:
    (tmp_path / "shipped.txt.j2").write_text("Subject: x\n\n{{ nope }}")
    with pytest.raises(TemplateProblem, match="'nope' is undefined"):
        Templates(tmp_path).render("shipped", sample_context())


def test_an_override_is_what_customers_get(engine: Engine, tmp_path: Path, mclock: Clock) -> None:
    settings = mail_settings(engine, tmp_path)
    tdir = settings.templates_dir()
    tdir.mkdir(parents=True)
    (tdir / "order_confirmation.txt.j2").write_text(
        '{% extends "base.txt.j2" %}\n'
        "{% block subject %}Thanks, {{ customer.name }}!{% endblock %}\n"
        "{% block body %}We got {{ order.number }} for {{ order.total|money }}.{% endblock %}\n"
    )
    desk = Desk(engine, factories.ADMIN, settings, clock=mclock)
    assert desk.notifications.check() == []
    o = factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    assert MailSender(engine, settings, mclock).deliver_due().sent == 1
    [n] = desk.notifications.list_notifications()
    eml = FileBackend(settings.mail_dir()).path_for_id(n.message_id).read_text()
    assert "Subject: Thanks, Grace Hopper!" in eml
    assert f"We got {o.number} for $22.95." in eml  # 18.00 + 4.95 shipping, en_US


def test_a_broken_override_fails_the_service_check_and_the_email(
    engine: Engine, tmp_path: Path, mclock: Clock
) -> None:
    settings = mail_settings(engine, tmp_path)
    tdir = settings.templates_dir()
    tdir.mkdir(parents=True)
    (tdir / "order_confirmation.html.j2").write_text("{{ order.nmber }}")
    desk = Desk(engine, factories.ADMIN, settings, clock=mclock)
    assert desk.notifications.check() == [
        "order_confirmation: 'dict object' has no attribute 'nmber'"
    ]
    factories.place(desk, 1, (("CAP-RED", 1),), "USD", "US")
    report = MailSender(engine, settings, mclock).deliver_due()
    assert report.failed == 1
    [n] = desk.notifications.list_notifications()
    assert n.status == "failed" and (n.last_error or "").startswith("template error:")
