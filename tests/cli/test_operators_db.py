"""Operators (incl. bootstrap and identity), db upgrade, config, entry points."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import types
from pathlib import Path

from pulse_tui.storage.db import current_revision, head_revision, make_engine

from .helpers import assert_clean_failure, ok_json


def test_first_operator_needs_no_acting_operator_then_admins_only(empty_cli) -> None:
    first = empty_cli(
        "operators", "add", "Root", "--role", "admin", "--name", "Root Admin", operator=None
    )
    assert first.exit_code == 0, first.stderr
    assert "added operator root (admin)" in first.stdout and "first operator" in first.stdout
    assert "schema created" in first.stderr  # auto-migration on first run
    # The second one is no bootstrap: an acting admin is required.
    before = empty_cli.fingerprint()
    refused = empty_cli("operators", "add", "bob", "--role", "agent", operator=None)
    assert_clean_failure(refused, 5, "no operator is mapped")
    assert empty_cli.fingerprint() == before
    added = empty_cli("operators", "add", "bob", "--role", "agent", "--json", operator="root")
    assert ok_json(added)["role"] == "agent"
    ops = ok_json(empty_cli("operators", "list", "--json", operator="root"))
    assert [(o["username"], o["role"], o["active"]) for o in ops] == [
        ("bob", "agent", True),
        ("root", "admin", True),
    ]
    assert ops[1]["display_name"] == "Root Admin"


def test_agent_cannot_add_operators(cli) -> None:
    before = cli.fingerprint()
    assert_clean_failure(cli("operators", "add", "eve", "--role", "admin", operator="alan"), 5)
    assert cli.fingerprint() == before


def test_add_refuses_bad_role_bad_name_and_duplicates(cli) -> None:
    before = cli.fingerprint()
    assert_clean_failure(cli("operators", "add", "eve", "--role", "boss"), 2, "unknown role")
    assert_clean_failure(cli("operators", "add", "9x", "--role", "agent"), 2, "bad username")
    assert_clean_failure(cli("operators", "add", "alan", "--role", "agent"), 4, "exists already")
    assert cli.fingerprint() == before


def test_list_formats(cli) -> None:
    ops = ok_json(cli("operators", "list", "--json"))
    assert {o["username"]: o["role"] for o in ops} == {
        "ada": "admin",
        "alan": "agent",
        "vic": "viewer",
        "wes": "warehouse",
    }
    out = cli("operators", "list", "--csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["username"] for r in rows] == ["ada", "alan", "vic", "wes"]
    human = cli("operators", "list")
    assert human.exit_code == 0 and "warehouse" in human.stdout


def test_disable_and_enable(cli) -> None:
    out = cli("operators", "disable", "wes")
    assert out.exit_code == 0 and out.stdout.strip() == "disabled operator wes"
    assert_clean_failure(cli("orders", "list", operator="wes"), 5, "disabled")
    assert_clean_failure(cli("operators", "disable", "wes"), 2, "already disabled")
    assert_clean_failure(cli("operators", "disable", "ada"), 2, "cannot disable yourself")
    assert_clean_failure(cli("operators", "disable", "zed"), 3, "no operator")
    assert cli("operators", "enable", "wes").exit_code == 0
    assert cli("orders", "list", "--json", operator="wes").exit_code == 0


def test_identity_from_env_and_from_the_os_user(cli, monkeypatch) -> None:
    monkeypatch.setenv("PULSE_OPERATOR", "vic")
    assert_clean_failure(
        cli("orders", "hold", "PB-100001", "--reason", "x", operator=None), 5, "viewer"
    )
    # --as beats the environment
    assert cli("orders", "list", "--json", operator="ada").exit_code == 0
    monkeypatch.delenv("PULSE_OPERATOR")
    assert (
        cli("operators", "add", "osuser", "--role", "agent", "--unix-user", "nobody-here").exit_code
        == 0
    )
    result = cli("orders", "note", "PB-100001", "from my shell", "--json", operator=None)
    assert result.exit_code == 0, result.stderr
    timeline = ok_json(cli("orders", "show", "PB-100001", "--json"))["timeline"]
    assert timeline[0]["actor"] == "osuser" and timeline[0]["message"] == "from my shell"


def test_db_upgrade_is_idempotent(empty_cli) -> None:
    first = empty_cli("db", "upgrade", operator=None)
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("upgraded ")
    assert empty_cli.path.exists()
    second = empty_cli("db", "upgrade", operator=None)
    assert second.exit_code == 0 and "up to date" in second.stdout
    engine = make_engine(empty_cli.url)
    try:
        assert current_revision(engine) == head_revision(engine)
    finally:
        engine.dispose()


def test_db_option_beats_the_environment(empty_cli, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    result = empty_cli("--db", f"sqlite:///{other}", "db", "upgrade", operator=None)
    assert result.exit_code == 0
    assert other.exists() and not empty_cli.path.exists()


def test_database_url_from_the_config_file(empty_cli, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PULSE_DATABASE_URL")
    target = tmp_path / "from-config.sqlite"
    (tmp_path / "config.toml").write_text(f'database_url = "sqlite:///{target}"\n')
    assert empty_cli("db", "upgrade", operator=None).exit_code == 0
    assert target.exists()


def test_bad_database_url_and_bad_config(empty_cli, tmp_path: Path) -> None:
    assert_clean_failure(
        empty_cli("--db", "not a url", "db", "upgrade", operator=None), 2, "database URL"
    )
    (tmp_path / "config.toml").write_text("this is = = not toml")
    assert_clean_failure(empty_cli("db", "upgrade", operator=None), 2, "bad config file")


def test_config_path_prints_pulse_config(empty_cli, tmp_path: Path) -> None:
    result = empty_cli("config-path", operator=None)
    assert result.exit_code == 0
    assert result.stdout.strip() == str(tmp_path / "config.toml")
    assert not empty_cli.path.exists()  # opens no database


def test_no_command_opens_the_desk_with_a_ready_desk(cli, monkeypatch) -> None:
    calls = {}

    class FakeApp:
        def run(self) -> None:
            calls["ran"] = True

    def build_app(desk, *, theme=None, settings=None):  # type: ignore[no-untyped-def]
        calls.update(actor=desk.actor.username, theme=theme, url=settings.database_url)
        return FakeApp()

    monkeypatch.setitem(sys.modules, "pulse_tui.app", types.SimpleNamespace(build_app=build_app))
    result = cli(operator="alan")
    assert result.exit_code == 0, result.stderr
    assert calls == {"actor": "alan", "theme": "pulse-dark", "url": cli.url, "ran": True}
    # without an operator the desk does not open
    calls.clear()
    assert_clean_failure(cli(operator=None), 5, "no operator")
    assert calls == {}


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    env = {"PULSE_CONFIG": str(tmp_path / "c.toml"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "pulse_tui", "config-path"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "c.toml")
