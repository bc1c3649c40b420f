"""The history backends: the same tests against SQLite and a real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from central.history import History, describe_url
from central.state import Transition


def t(ts, to, frm=None, scope="group", item="power", host="web-01", cause="state"):
    return Transition(ts, "dc1", host, scope, item, frm, to, "r", cause, "power", 0)


@pytest.fixture
def history(database_url):
    h = History.open(database_url)
    yield h
    h.close()


def test_transitions_round_trip_and_last_states(history):
    history.add_transitions(
        [
            t(100, "redundant"),
            t(200, "degraded", "redundant"),
            t(150, "redundant", scope="host", item="web-01"),
            t(300, "offline", "redundant", scope="host", item="web-01", cause="last_will"),
            t(120, "failed", host="db-01"),
        ]
    )
    history.commit()
    assert history.last_states() == {
        ("dc1", "web-01", "group", "power"): "degraded",
        ("dc1", "web-01", "host", "web-01"): "offline",
        ("dc1", "db-01", "group", "power"): "failed",
    }
    rows = history.transitions(site="dc1", host="web-01")
    assert [(r["ts"], r["to"], r["cause"]) for r in rows] == [
        (300, "offline", "last_will"),
        (200, "degraded", "state"),
        (150, "redundant", "state"),
        (100, "redundant", "state"),
    ]
    assert history.transitions(scope="host")[0]["id"] == "web-01"
    # the newest record of each, whole (what the alert routing re-raises after a restart)
    assert sorted(history.last_transitions(), key=lambda r: (r.host, r.scope)) == [
        t(120, "failed", host="db-01"),
        t(200, "degraded", "redundant"),
        t(300, "offline", "redundant", scope="host", item="web-01", cause="last_will"),
    ]


def test_changes_give_the_state_at_the_start_and_the_changes_inside(history):
    history.add_transitions(
        [t(100, "redundant"), t(200, "degraded"), t(300, "failed"), t(400, "redundant")]
    )
    assert history.changes("dc1", "web-01", "group", "power", 250, 350) == (
        "degraded",
        [(300, "failed")],
    )
    assert history.changes("dc1", "web-01", "group", "power", 0, 150) == (
        None,
        [(100, "redundant")],
    )
    assert history.items("dc1", "web-01", "group", 0, 1000) == ["power"]
    assert history.items("dc1", "web-01", "group", 0, 50) == []


def test_a_gone_group_is_no_item_after_it_went(history):
    history.add_transitions([t(100, "redundant"), t(200, None, "redundant", cause="gone")])
    assert history.items("dc1", "web-01", "group", 150, 300) == ["power"]
    assert history.items("dc1", "web-01", "group", 250, 300) == []


def test_events_are_stored_as_received(history):
    doc = {
        "schema": 1,
        "ts": 10.5,
        "seq": 7,
        "type": "transition",
        "site": "dc1",
        "host": "web-01",
        "scope": "group",
        "id": "md/md0",
        "from": "redundant",
        "to": "degraded",
        "reason": "sdb1 failed",
    }
    history.add_event(doc, received=11.0)
    history.add_event(
        {**doc, "seq": 9, "ts": 12.0, "type": "started", "id": "web-01", "message": "hi"}
        | {k: None for k in ()},
        received=12.5,
    )
    events = history.events(host="web-01")
    assert [e["seq"] for e in events] == [9, 7]
    assert events[1] == {**doc, "received": 11.0}
    assert history.last_event_seqs() == {("dc1", "web-01"): 9}
    assert history.events(host="other") == []
    assert [e["seq"] for e in history.events(before=12.0)] == [7]


def test_maintenance_windows_from_the_api_and_the_config(history):
    m = history.add_maintenance("dc1", "web-01", "", 100, 200, "PSU swap", "api", now=50)
    assert m.id > 0 and m.covers("dc1", "web-01") and m.covers("dc1", "web-01", "power")
    assert not m.covers("dc1", "db-01")
    history.replace_config_maintenance([("dc2", "", "", 0, 50, "move")], now=1)
    history.replace_config_maintenance([("dc2", "", "raid", 10, 60, "disks")], now=2)
    windows = history.maintenance()
    assert [(w.site, w.group, w.source) for w in windows] == [
        ("dc2", "raid", "config"),
        ("dc1", "", "api"),
    ]
    assert [w.id for w in history.maintenance(end_after=150)] == [m.id]
    assert history.delete_maintenance(m.id) is True
    assert history.delete_maintenance(m.id) is False


def test_alerts_are_recorded(history):
    history.add_alert(5.0, "dc1", "web-01", "power", "firing", "webhook", "degraded")
    assert history.alerts() == [
        {
            "ts": 5.0,
            "site": "dc1",
            "host": "web-01",
            "id": "power",
            "status": "firing",
            "receiver": "webhook",
            "detail": "degraded",
        }
    ]


def test_written_history_survives_a_reopen(database_url):
    h = History.open(database_url)
    h.add_transitions([t(100, "degraded")])
    h.add_event(
        {
            "schema": 1,
            "ts": 1.0,
            "seq": 3,
            "type": "started",
            "site": "dc1",
            "host": "web-01",
            "id": "web-01",
            "message": "m",
        },
        received=1.0,
    )
    h.close()
    again = History.open(database_url)
    try:
        assert again.last_states() == {("dc1", "web-01", "group", "power"): "degraded"}
        assert again.last_event_seqs() == {("dc1", "web-01"): 3}
        assert json.loads(json.dumps(again.events()))[0]["message"] == "m"
    finally:
        again.close()


def test_a_failed_statement_leaves_the_connection_usable(history):
    with pytest.raises(Exception):  # noqa: B017 - the drivers raise different classes
        history._exec("SELECT no_such_column FROM transitions")
    history.add_transitions([t(1, "redundant")])
    assert history.last_states()


def test_database_urls_are_described_without_passwords():
    assert (
        describe_url("postgresql://u:secret@db.example:5433/h") == "postgresql://db.example:5433/h"
    )
    assert describe_url("sqlite:////var/lib/x.db") == "/var/lib/x.db"


def test_pruning_keeps_the_state_that_still_holds(history):
    history.add_transitions(
        [
            t(100, "redundant"),
            t(200, "degraded"),
            t(300, "redundant"),
            t(50, "failed", item="fans"),
            t(400, "degraded"),
        ]
    )
    for seq, ts in ((1, 100.0), (2, 500.0)):
        history.add_event(
            {
                "schema": 1,
                "ts": ts,
                "seq": seq,
                "type": "started",
                "site": "dc1",
                "host": "web-01",
                "id": "web-01",
                "message": "m",
            },
            received=ts,
        )
    history.add_alert(100.0, "dc1", "web-01", "power", "firing", "w", "d")
    old = history.add_maintenance("dc1", "", "", 10, 20, "", "api", now=1)
    history.add_maintenance("dc1", "", "", 10, 900, "", "api", now=1)
    history.add_silence("s-old", {"host": ["web-01"]}, 10, 300, "api", "", now=1)
    history.add_silence("s-new", {"host": ["web-01"]}, 10, 900, "api", "", now=1)
    removed = history.prune(cutoff=350)
    assert removed == {
        "events": 1,
        "alerts": 1,
        "maintenance": 1,
        "silences": 1,
        "transitions": 3,
    }
    assert [s.id for s in history.silences()] == ["s-new"]
    # the newest record of each item stays, however old: fans failed since 50
    assert history.last_states() == {
        ("dc1", "web-01", "group", "power"): "degraded",
        ("dc1", "web-01", "group", "fans"): "failed",
    }
    assert history.changes("dc1", "web-01", "group", "fans", 1000, 2000) == ("failed", [])
    assert [e["seq"] for e in history.events()] == [2]
    assert old.id not in [m.id for m in history.maintenance()]


def test_a_lost_postgresql_connection_is_reopened_and_uncommitted_writes_redone(postgres):
    url = postgres.new_database()
    h = History.open(url)
    try:
        h.add_transitions([t(100, "redundant")])
        h.commit()
        h.add_transitions([t(200, "degraded")])  # not committed yet when the connection dies
        import psycopg

        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        h.add_transitions([t(300, "failed")])
        h.commit()
        assert [r["to"] for r in h.transitions()] == ["failed", "degraded", "redundant"]
    finally:
        h.close()
    again = History.open(url)
    try:
        assert len(again.transitions()) == 3
    finally:
        again.close()


def test_a_refused_statement_keeps_the_good_writes_before_it(history):
    history.add_transitions([t(100, "redundant")])  # uncommitted
    with pytest.raises(Exception):  # noqa: B017 - the drivers raise different classes
        history._exec("INSERT INTO transitions (no_such_column) VALUES (1)", write=True)
    history.commit()
    assert [r["to"] for r in history.transitions()] == ["redundant"]


def test_silences_are_kept_ended_early_and_listed_by_end(history):
    history.add_silence(
        "a1", {"site": ["dc1"], "host": ["db-*", "web-0?"]}, 100, 500, "ops", "disk swap", now=90
    )
    history.add_silence("b2", {"group": ["power"]}, 200, 300, "api", "", now=90)
    assert [
        (s.id, s.matchers, s.start, s.end, s.created_by, s.comment) for s in history.silences()
    ] == [
        ("a1", {"host": ["db-*", "web-0?"], "site": ["dc1"]}, 100, 500, "ops", "disk swap"),
        ("b2", {"group": ["power"]}, 200, 300, "api", ""),
    ]
    assert [s.id for s in history.silences(end_after=300)] == ["a1"]
    assert history.end_silence("a1", 250) is True
    assert history.end_silence("nope", 250) is False
    assert [s.id for s in history.silences(end_after=260)] == ["b2"]
    assert history.silences()[0].end == 250
