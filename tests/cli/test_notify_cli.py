"""`pulse notify ...` and `pulse bulk notify`: delivery through the file backend into
tmp_path, exit codes, --json/--csv, database effects, permissions, Ctrl+C."""

from __future__ import annotations

import csv
import email
import io
import json
import os
import signal
import subprocess
import sys
import time
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pulse_tui.storage.db import make_engine, read_session, write_session
from pulse_tui.storage.models import Customer, Notification, OrderEvent

from .helpers import assert_clean_failure, ok_json


@pytest.fixture
def outbox(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = isolated_env / "outbox"
    monkeypatch.setenv("PULSE_MAIL_DIR", str(path))
    for name in ("PULSE_MAIL_BACKEND", "PULSE_MAIL_TEMPLATES", "PULSE_SMTP_HOST", "PULSE_NOTIFY"):
        monkeypatch.delenv(name, raising=False)
    return path


def emls(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*.eml")) if outbox.exists() else []


def rows(url: str) -> list[Notification]:
    engine = make_engine(url)
    try:
        with read_session(engine) as s:
            return list(s.execute(select(Notification).order_by(Notification.id)).scalars())
    finally:
        engine.dispose()


def execute(url: str, stmt) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    try:
        with write_session(engine) as s:
            s.execute(stmt)
    finally:
        engine.dispose()


def sent_events(url: str) -> int:
    engine = make_engine(url)
    try:
        with read_session(engine) as s:
            return len(
                s.execute(select(OrderEvent.id).where(OrderEvent.kind == "notification_sent")).all()
            )
    finally:
        engine.dispose()


def deliver(cli) -> dict:  # type: ignore[no-untyped-def]
    return ok_json(cli("notify", "--once", "--json"))


def as_if_sent(url: str) -> None:
    """The small database's queued emails marked sent without sending them (fast):
    the next run delivers only what the test queues."""
    execute(url, update(Notification).where(Notification.status == "queued").values(status="sent"))


# -- delivery ---------------------------------------------------------------------


def test_run_needs_once_or_watch_and_a_positive_interval(cli, outbox) -> None:
    assert_clean_failure(cli("notify"), 2, "choose one of --once or --watch")
    assert_clean_failure(cli("notify", "--once", "--watch"), 2, "choose one of")
    assert_clean_failure(cli("notify", "--watch", "--interval", "0"), 2, "--interval")
    assert emls(outbox) == []


def test_once_delivers_every_due_email_exactly_once(cli, outbox) -> None:
    queued = [n for n in rows(cli.url) if n.status == "queued"]
    assert queued  # the small database's orders queued their emails
    r = cli("notify", "--once")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert r.stderr == f"notify: {len(queued)} sent, 0 failed, 0 to retry later, 0 skipped\n"
    files = emls(outbox)
    assert len(files) == len(queued)
    assert {n.status for n in rows(cli.url)} == {"sent"}
    assert sent_events(cli.url) == len(queued)
    msg = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert msg["Message-ID"] in {n.message_id for n in rows(cli.url)}
    again = deliver(cli)
    assert again == {"sent": 0, "failed": 0, "retried": 0, "skipped": 0, "errors": []}
    assert len(emls(outbox)) == len(queued)


def test_a_permanent_failure_exits_1_and_is_listed_on_stderr(cli, outbox) -> None:
    bad, good = [n for n in rows(cli.url) if n.status == "queued"][:2]
    keep = (bad.id, good.id)
    execute(cli.url, update(Notification).where(Notification.id.not_in(keep)).values(status="sent"))
    execute(cli.url, update(Notification).where(Notification.id == bad.id).values(to_addr="x@@y"))
    r = cli("notify", "--once")
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: #{bad.id} to x@@y: failed:")
    got = {n.id: n for n in rows(cli.url)}
    assert got[bad.id].status == "failed" and got[bad.id].last_error
    assert sum(n.status == "sent" for n in got.values()) == len(got) - 1


def test_temporary_failures_are_retried_later_and_exit_0(cli, outbox, monkeypatch) -> None:
    one = next(n for n in rows(cli.url) if n.status == "queued")
    execute(cli.url, update(Notification).where(Notification.id != one.id).values(status="sent"))
    blocked = outbox.parent / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("PULSE_MAIL_DIR", str(blocked))
    r = cli("notify", "--once")
    assert r.exit_code == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "notify: 0 sent, 0 failed, 1 to retry later, 0 skipped"
    assert lines[1].startswith(f"warning: #{one.id} to ") and "retrying in 30 s" in lines[1]
    (again,) = [n for n in rows(cli.url) if n.id == one.id]
    assert again.status == "queued" and again.attempts == 1 and again.last_error


def test_bad_mail_configuration_exits_2_and_sends_nothing(cli, outbox, monkeypatch) -> None:
    monkeypatch.setenv("PULSE_MAIL_BACKEND", "pigeon")
    assert_clean_failure(cli("notify", "--once"), 2, "bad configuration", "mail.backend")
    assert_clean_failure(cli("notify", "check"), 2, "mail.backend")
    assert emls(outbox) == []
    assert "sent" not in {n.status for n in rows(cli.url)}


def test_watch_stops_cleanly_on_ctrl_c(cli, outbox) -> None:
    one = next(n for n in rows(cli.url) if n.status == "queued")
    execute(cli.url, update(Notification).where(Notification.id != one.id).values(status="sent"))
    env = {**os.environ, "PULSE_OPERATOR": "ada", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pulse_tui", "notify", "--watch", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        seen = ""
        while "sent" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "delivering every 0.2s" in seen and "notify: 1 sent, " in seen, seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping after the current email" in err and err.rstrip().endswith("stopped")
    assert "Traceback" not in err
    assert {n.status for n in rows(cli.url)} == {"sent"}


# -- templates --------------------------------------------------------------------


def test_check_passes_with_the_shipped_templates(cli, outbox) -> None:
    r = cli("notify", "check")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("templates ok")
    got = ok_json(cli("notify", "check", "--json"))
    assert got["ok"] is True and got["problems"] == []


def test_check_exits_1_listing_each_broken_template(cli, outbox, tmp_path, monkeypatch) -> None:
    overrides = tmp_path / "my-templates"
    overrides.mkdir()
    (overrides / "shipped.txt.j2").write_text("Subject: {{ order.number }\n\nbroken\n")
    (overrides / "delivered.txt.j2").write_text("Subject: x\n\n{{ no_such_thing.at_all }}\n")
    monkeypatch.setenv("PULSE_MAIL_TEMPLATES", str(overrides))
    r = cli("notify", "check")
    assert r.exit_code == 1
    assert r.stdout == ""
    problems = r.stderr.strip().splitlines()
    assert len(problems) == 2, r.stderr
    assert all(p.startswith("error: ") for p in problems)
    assert {p.split()[1].rstrip(":") for p in problems} == {"shipped", "delivered"}
    got = cli("notify", "check", "--json")
    assert got.exit_code == 1
    assert len(json.loads(got.stdout)["problems"]) == 2
    # delivery checks first: nothing is sent (nor failed) with broken templates
    assert_clean_failure(cli("notify", "--once"), 2, "bad configuration", "(and 1 more)")
    assert emls(outbox) == []
    assert "sent" not in {n.status for n in rows(cli.url)}


# -- list / retry / resend ------------------------------------------------------------


def test_list_json_csv_filters_and_viewer(cli, outbox) -> None:
    everything = ok_json(cli("notify", "list", "--json", operator="vic"))
    assert len(everything) == len(rows(cli.url))
    mine = ok_json(cli("notify", "list", "--order", "pb-100001", "--json"))
    assert mine and {n["order"] for n in mine} == {"PB-100001"}
    assert [n["id"] for n in mine] == sorted((n["id"] for n in mine), reverse=True)
    r = cli("notify", "list", "--status", "queued", "--csv")
    table = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(table) == len(everything) and table[0]["status"] == "queued"
    r = cli("notify", "list", "--status", "failed")
    assert r.exit_code == 0 and "no emails match" in r.stderr
    assert_clean_failure(
        cli("notify", "list", "--status", "lost"), 2, "unknown notification status"
    )
    assert_clean_failure(cli("notify", "list", "--order", "PB-999999"), 3, "PB-999999")


def test_retry_a_failed_email_then_deliver_it(cli, outbox) -> None:
    bad = next(n for n in rows(cli.url) if n.status == "queued")
    execute(cli.url, update(Notification).where(Notification.id != bad.id).values(status="sent"))
    execute(cli.url, update(Notification).where(Notification.id == bad.id).values(to_addr="x@@y"))
    cli("notify", "--once")
    failed = ok_json(cli("notify", "list", "--status", "failed", "--json"))
    assert [n["id"] for n in failed] == [bad.id]
    assert_clean_failure(cli("notify", "retry", str(bad.id), operator="vic"), 5, "may not")
    # the address is fixed, then the email is retried
    execute(
        cli.url,
        update(Notification).where(Notification.id == bad.id).values(to_addr="grace@example.com"),
    )
    r = cli("notify", "retry", str(bad.id), operator="alan")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"queued again: #{bad.id} ")
    assert deliver(cli)["sent"] == 1
    assert_clean_failure(cli("notify", "retry", str(bad.id)), 1, "only failed or skipped")
    assert_clean_failure(cli("notify", "retry", "999"), 3, "no notification #999")


def test_resend_makes_a_new_email_with_a_new_message_id(cli, outbox) -> None:
    as_if_sent(cli.url)
    first = rows(cli.url)[0]
    got = ok_json(cli("notify", "resend", str(first.id), "--json"))
    assert got["status"] == "queued" and got["id"] != first.id
    assert got["message_id"] != first.message_id and got["template"] == first.template
    assert deliver(cli)["sent"] == 1
    (path,) = emls(outbox)
    assert got["message_id"].strip("<>") in path.name


# -- send ----------------------------------------------------------------------------


def test_send_a_free_message_and_find_it_in_the_outbox(cli, outbox) -> None:
    as_if_sent(cli.url)
    got = ok_json(
        cli(
            "notify",
            "send",
            "PB-100002",
            "--subject",
            "About your cap",
            "--body",
            "It ships Monday.",
            "--json",
            operator="alan",
        )
    )
    assert (got["order"], got["template"], got["status"]) == ("PB-100002", "free_message", "queued")
    assert got["to"] == "grace@example.com"
    assert deliver(cli)["sent"] == 1
    (path,) = emls(outbox)
    assert got["message_id"].strip("<>") in path.name
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["Subject"] == "About your cap"
    assert "It ships Monday." in msg.get_body(("plain",)).get_content()


def test_send_defaults_to_the_templates_draft_and_reads_stdin(cli, outbox) -> None:
    r = cli("notify", "send", "100002")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("queued: #") and "PB-100002 to grace@example.com" in r.stdout
    n = rows(cli.url)[-1]
    assert n.template == "free_message" and n.subject and "PB-100002" in (n.body_text or "")
    r = cli.runner.invoke(
        __import__("pulse_tui.cli.main", fromlist=["app"]).app,
        ["--as", "ada", "notify", "send", "PB-100002", "--subject", "S", "--body", "-"],
        input="From stdin.\n",
    )
    assert r.exit_code == 0, r.stderr
    assert rows(cli.url)[-1].body_text.strip() == "From stdin."


def test_send_a_template(cli, outbox) -> None:
    assert_clean_failure(
        cli("notify", "send", "PB-100001", "--template", "delivered"), 1, "not delivered"
    )
    execute(
        cli.url,
        update(Notification)
        .where(Notification.template == "order_confirmation")
        .values(status="failed"),
    )
    got = ok_json(cli("notify", "send", "PB-100001", "--template", "order_confirmation", "--json"))
    assert (got["template"], got["status"], got["order"]) == (
        "order_confirmation",
        "queued",
        "PB-100001",
    )
    assert_clean_failure(
        cli("notify", "send", "PB-100001", "--template", "order_confirmation"),
        1,
        "already queued or sent",
    )


def test_send_errors_and_permissions(cli, outbox) -> None:
    before = len(rows(cli.url))
    assert_clean_failure(
        cli("notify", "send", "PB-100001", "--template", "shipped", "--subject", "x"),
        2,
        "--template",
    )
    assert_clean_failure(cli("notify", "send", "PB-100001", operator="vic"), 5, "may not")
    assert_clean_failure(cli("notify", "send", "PB-100001", operator="wes"), 5, "may not")
    assert_clean_failure(cli("notify", "send", "PB-999999", "--subject", "a", "--body", "b"), 3, "")
    assert_clean_failure(
        cli("notify", "send", "PB-100001", "--subject", "a", "--body", "b", "--if-version", "99"),
        4,
        "changed by someone else",
    )
    execute(cli.url, update(Customer).where(Customer.id == 2).values(no_transactional_email=True))
    assert_clean_failure(
        cli("notify", "send", "PB-100001", "--subject", "a", "--body", "b"),
        1,
        "opted out of transactional email",
    )
    assert len(rows(cli.url)) == before


# -- bulk notify ---------------------------------------------------------------------


def test_bulk_notify_preview_apply_rerun_and_deliver(cli, outbox) -> None:
    cli("customers", "email-pref", "2", "--block")
    as_if_sent(cli.url)
    args = ("bulk", "notify", "--filter", "", "--template", "free_message", "--subject", "Delay")
    assert_clean_failure(cli(*args), 2, "cannot be empty")  # free_message needs a body
    args = (*args, "--body", "We are a day late.")
    before = len(rows(cli.url))
    preview = ok_json(cli(*args, "--dry-run", "--json"))
    assert preview == {
        "applied": False,
        "matched": 24,
        "eligible": 20,
        "skipped": {"customer opted out of transactional email": 4},
    }
    assert len(rows(cli.url)) == before
    done = ok_json(cli(*args, "--yes", "--json"))
    assert done["changed"] == 20 and done["skipped"] == preview["skipped"]
    assert len(rows(cli.url)) == before + 20
    again = ok_json(cli(*args, "--yes", "--json"))
    assert again["changed"] == 0 and again["skipped"]["message already queued or sent"] == 20
    sent = deliver(cli)["sent"]
    bodies = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        .get_body(("plain",))
        .get_content()
        for p in emls(outbox)
    ]
    assert sent == len(bodies) == 20
    assert all("We are a day late." in b for b in bodies)


def test_bulk_notify_human_output_and_refusals(cli, outbox) -> None:
    r = cli("bulk", "notify", "-q", "status:pending", "--template", "shipped", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "notify shipped:" in r.stdout and "skipped: not shipped" in r.stdout
    assert_clean_failure(
        cli("bulk", "notify", "--filter", "", "--template", "nope", "--yes"), 2, "unknown template"
    )
    assert_clean_failure(
        cli("bulk", "notify", "--filter", "", "--template", "shipped", "--yes", operator="alan"),
        5,
        "may not run bulk actions",
    )
