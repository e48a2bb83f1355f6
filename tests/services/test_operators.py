from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from pulse_tui.domain.permissions import Role
from pulse_tui.services.context import SYSTEM
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Conflict, Denied, InvalidInput, NotFound
from pulse_tui.services.operators import operator_count, resolve_actor
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session
from tests import factories
from tests.services.test_orders import db_state


@pytest.fixture
def empty_engine(tmp_path: Path) -> Engine:
    eng = factories.new_engine(tmp_path / "empty.sqlite")
    yield eng
    eng.dispose()


def test_bootstrap_only_when_empty(empty_engine: Engine) -> None:
    anyone = Desk(empty_engine, SYSTEM, clock=factories.FrozenClock())
    assert operator_count(empty_engine) == 0
    op = anyone.operators.add("Root", role="admin", unix_user="root", bootstrap=True)
    assert (op.username, op.role, op.active, op.unix_user) == ("root", "admin", True, "root")
    assert operator_count(empty_engine) == 1
    with read_session(empty_engine) as s:
        (entry,) = queries.audit_entries(s, "operator", "root")
    assert (entry.action, entry.actor, entry.before) == ("operator.add", "root", None)
    assert entry.after == {"role": "admin", "unix_user": "root", "active": True}
    before = db_state(empty_engine)
    with pytest.raises(Denied, match="operators exist already"):
        anyone.operators.add("second", role="admin", bootstrap=True)
    assert db_state(empty_engine) == before


def test_add_list_and_refusals(engine: Engine, admin_desk: Desk) -> None:
    op = admin_desk.operators.add("kim", role="Warehouse", display_name="Kim W", unix_user="kimw")
    assert (op.username, op.role, op.display_name) == ("kim", "warehouse", "Kim W")
    assert [o.username for o in admin_desk.operators.list()] == ["ada", "alan", "kim", "vic", "wes"]
    before = db_state(engine)
    for args, kw, err, msg in [
        (("kim",), {"role": "agent"}, Conflict, "operator 'kim' exists already"),
        (("KIM",), {"role": "agent"}, Conflict, "exists already"),
        (("lee",), {"role": "agent", "unix_user": "kimw"}, Conflict, "OS user 'kimw' is mapped"),
        (("lee",), {"role": "boss"}, InvalidInput, "unknown role 'boss'"),
        (("1lee",), {"role": "agent"}, InvalidInput, "bad username '1lee'"),
        (("l",), {"role": "agent"}, InvalidInput, "bad username"),
        (("lee lee",), {"role": "agent"}, InvalidInput, "bad username"),
        (("x" * 40,), {"role": "agent"}, InvalidInput, "bad username"),
    ]:
        with pytest.raises(err, match=msg):
            admin_desk.operators.add(*args, **kw)
    assert db_state(engine) == before


def test_disable_and_enable(engine: Engine, admin_desk: Desk) -> None:
    assert resolve_actor(engine, "vic").role == Role.VIEWER
    admin_desk.operators.set_active("vic", False)
    with pytest.raises(Denied, match="operator 'vic' is disabled"):
        resolve_actor(engine, "vic")
    assert [o.username for o in admin_desk.operators.list(include_inactive=False)] == [
        "ada",
        "alan",
        "wes",
    ]
    with read_session(engine) as s:
        entry = queries.audit_entries(s, "operator", "vic")[-1]
    assert (entry.action, entry.before, entry.after) == (
        "operator.disable",
        {"active": True},
        {"active": False},
    )
    before = db_state(engine)
    with pytest.raises(InvalidInput, match="vic is already disabled"):
        admin_desk.operators.set_active("vic", False)
    with pytest.raises(InvalidInput, match="cannot disable yourself"):
        admin_desk.operators.set_active("ada", False)
    with pytest.raises(NotFound, match="no operator 'nobody'"):
        admin_desk.operators.set_active("nobody", False)
    assert db_state(engine) == before
    admin_desk.operators.set_active("VIC", True)
    assert resolve_actor(engine, "vic").username == "vic"


def test_resolve_actor_by_name(engine: Engine) -> None:
    a = resolve_actor(engine, "alan", unix_user="nobody")
    assert (a.username, a.role, a.display_name) == ("alan", Role.AGENT, "Alan Agent")
    assert resolve_actor(engine, " Alan ").username == "alan"


def test_resolve_actor_by_unix_user(engine: Engine, admin_desk: Desk) -> None:
    admin_desk.operators.add("kim", role="warehouse", unix_user="kimw")
    a = resolve_actor(engine, None, unix_user="kimw")
    assert (a.username, a.role) == ("kim", Role.WAREHOUSE)
    assert resolve_actor(engine, "", unix_user="kimw").username == "kim"


def test_unknown_operator_is_refused_helpfully(engine: Engine) -> None:
    with pytest.raises(Denied) as exc:
        resolve_actor(engine, "mallory")
    assert str(exc.value) == "unknown operator 'mallory' (see `pulse operators list`)"
    assert exc.value.exit_code == 5
    with pytest.raises(Denied) as exc:
        resolve_actor(engine, None, unix_user="stranger")
    msg = str(exc.value)
    assert "no operator is mapped to OS user 'stranger'" in msg
    assert "--as NAME" in msg and "PULSE_OPERATOR" in msg
    assert "pulse operators add NAME --role R --unix-user stranger" in msg


def test_disabled_unix_user_is_refused(engine: Engine, admin_desk: Desk) -> None:
    admin_desk.operators.add("kim", role="agent", unix_user="kimw")
    admin_desk.operators.set_active("kim", False)
    with pytest.raises(Denied, match="operator 'kim' is disabled"):
        resolve_actor(engine, None, unix_user="kimw")


def test_ensure_demo_admin_is_idempotent(empty_engine: Engine) -> None:
    d = Desk(empty_engine, SYSTEM, clock=factories.FrozenClock())
    op = d.operators.ensure_demo_admin()
    assert (op.username, op.role) == ("demo", "admin")
    d.operators.ensure_demo_admin()
    assert operator_count(empty_engine) == 1
    assert resolve_actor(empty_engine, "demo").role == Role.ADMIN
