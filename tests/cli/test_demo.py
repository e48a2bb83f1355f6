"""`pulse demo seed` on an empty database."""

from __future__ import annotations

import importlib.util

import pytest

from .helpers import all_orders, assert_clean_failure, ok_json

needs_demo = pytest.mark.skipif(
    importlib.util.find_spec("pulse_tui.services.demo") is None,
    reason="pulse_tui/services/demo.py (the seeder) is not written yet",
)


@needs_demo
def test_seed_small_then_refuse_a_second_time(empty_cli) -> None:
    summary = ok_json(
        empty_cli("demo", "seed", "--orders", "60", "--seed", "7", "--json", operator=None)
    )
    assert summary["orders"] == 60
    assert summary["customers"] > 0 and summary["products"] > 0 and summary["lines"] >= 60
    assert len(all_orders(empty_cli.url)) == 60
    ops = ok_json(empty_cli("operators", "list", "--json", operator="demo"))
    assert {o["username"]: o["role"] for o in ops}["demo"] == "admin"
    listed = ok_json(empty_cli("orders", "list", "--json", "--limit", "100", operator="demo"))
    assert len(listed) == 60
    before = empty_cli.fingerprint()
    again = empty_cli("demo", "seed", "--orders", "5", operator=None)
    assert_clean_failure(again, 2, "already holds orders")
    assert empty_cli.fingerprint() == before


@needs_demo
def test_seed_human_summary_goes_to_stdout_and_no_progress_bar_off_a_tty(empty_cli) -> None:
    result = empty_cli("demo", "seed", "--orders", "10", "--seed", "1", operator=None)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("seeded 10 orders")
    assert "━" not in result.stderr  # no Rich bar when stderr is not a terminal


def test_seed_rejects_a_non_positive_count(empty_cli) -> None:
    result = empty_cli("demo", "seed", "--orders", "0", operator=None)
    assert result.exit_code == 2
    assert not empty_cli.path.exists()


def test_progress_bar_only_on_a_terminal(monkeypatch) -> None:
    import io

    from pulse_tui.cli import demo as cli_demo

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO())
    with cli_demo._progress(10) as update:
        assert update is None
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    with cli_demo._progress(10) as update:
        assert update is not None
        update(5, 10)
        update(10, 10)
    assert "10/10" in tty.getvalue()
