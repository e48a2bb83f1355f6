"""`pulse customers add|list|email-pref`: output, exit codes, db effects, permissions."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import AuditEntry, Customer

from .helpers import assert_clean_failure, ok_json


def customers(url: str) -> dict[int, Customer]:
    engine = make_engine(url)
    try:
        with read_session(engine) as s:
            return {c.id: c for c in s.execute(select(Customer)).scalars()}
    finally:
        engine.dispose()


def audit_count(url: str, action: str) -> int:
    engine = make_engine(url)
    try:
        with read_session(engine) as s:
            return int(
                s.execute(
                    select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_add_prints_one_line_and_stores_the_normalised_address(cli) -> None:
    r = cli("customers", "add", "Ada Lovelace", "--email", "Ada@EXAMPLE.org", "--company", "AE")
    assert r.exit_code == 0, r.stderr
    assert (
        r.stdout
        == "added customer #6 Ada Lovelace <Ada@example.org> (transactional email allowed)\n"
    )
    c = customers(cli.url)[6]
    assert (c.email, c.company, c.locale, c.no_transactional_email) == (
        "Ada@example.org",
        "AE",
        "en_US",
        False,
    )
    assert audit_count(cli.url, "customer.create") == 1


def test_add_json_and_no_transactional_email(cli) -> None:
    got = ok_json(
        cli(
            "customers",
            "add",
            "Jo",
            "--email",
            "jo@example.org",
            "--locale",
            "de-DE",
            "--phone",
            "+49 30 1",
            "--no-transactional-email",
            "--json",
        )
    )
    assert got["email"] == "jo@example.org" and got["locale"] == "de_DE"
    assert got["transactional_email"] is False and got["orders"] == 0
    assert customers(cli.url)[got["id"]].no_transactional_email is True


def test_bad_email_exits_2_with_the_validators_reason_and_writes_nothing(cli) -> None:
    before = cli.fingerprint(), len(customers(cli.url))
    r = cli("customers", "add", "Bad", "--email", "bad@@example.org")
    assert_clean_failure(r, 2, "invalid email address", "bad@@example.org")
    assert (cli.fingerprint(), len(customers(cli.url))) == before


def test_duplicate_email_exits_4(cli) -> None:
    r = cli("customers", "add", "Grace", "--email", "grace@EXAMPLE.com")
    assert_clean_failure(r, 4, "customer #1 (Grace Hopper) already has the address")


def test_viewer_and_warehouse_may_not_add(cli) -> None:
    for who in ("vic", "wes"):
        r = cli("customers", "add", "X", "--email", "x@example.org", operator=who)
        assert_clean_failure(r, 5, "may not add customers")
    assert len(customers(cli.url)) == 5


def test_agent_may_add(cli) -> None:
    r = cli("customers", "add", "X", "--email", "x@example.org", operator="alan")
    assert r.exit_code == 0, r.stderr


def test_list_json_csv_and_table(cli) -> None:
    got = ok_json(cli("customers", "list", "--json", operator="vic"))
    assert [c["name"] for c in got] == [
        "Grace Hopper",
        "Jürgen Müller",
        "Yuki Tanaka",
        "Amélie Dubois",
        "Omar Haddad",
    ]
    assert sum(c["orders"] for c in got) == 24
    assert all(c["transactional_email"] for c in got)
    r = cli("customers", "list", "--csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert (
        rows[1]["email"] == "juergen.mueller@example.de" and rows[1]["transactional_email"] == "yes"
    )
    r = cli("customers", "list", "--search", "tanaka")
    assert r.exit_code == 0 and "Yuki Tanaka" in r.stdout and "Grace" not in r.stdout
    r = cli("customers", "list", "--limit", "2")
    assert "more match (raise --limit)" in r.stderr
    r = cli("customers", "list", "--search", "zzzz-nobody", "--json")
    assert r.stdout.strip() == "[]" and "no customers match" in r.stderr
    assert_clean_failure(cli("customers", "list", "--json", "--csv"), 2, "--json or --csv")


def test_email_pref_block_then_allow(cli) -> None:
    r = cli("customers", "email-pref", "#2", "--block", operator="alan")
    assert r.stdout == "customer #2 Jürgen Müller: no transactional email\n", r.stderr
    assert customers(cli.url)[2].no_transactional_email is True
    r = cli("customers", "email-pref", "2", "--block")
    assert r.stdout.endswith("(unchanged)\n")
    assert audit_count(cli.url, "customer.transactional_email") == 1
    got = ok_json(cli("customers", "email-pref", "2", "--allow", "--json"))
    assert got["transactional_email"] is True
    assert customers(cli.url)[2].no_transactional_email is False


def test_email_pref_errors(cli) -> None:
    assert_clean_failure(cli("customers", "email-pref", "2"), 2, "--allow or --block")
    assert_clean_failure(cli("customers", "email-pref", "x", "--allow"), 2, "bad customer id")
    assert_clean_failure(cli("customers", "email-pref", "99", "--allow"), 3, "no customer #99")
    assert_clean_failure(
        cli("customers", "email-pref", "2", "--block", operator="vic"), 5, "may not"
    )
    assert customers(cli.url)[2].no_transactional_email is False
