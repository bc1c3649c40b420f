"""Availability and exposure: hand-computed scenarios over state timelines."""

from __future__ import annotations

import pytest

from central import availability as av


def evaluate(initial, changes, start, end, target=99.95, maintenance=(), host=None):
    tl = av.timeline(initial, changes, start, end)
    if host is not None:
        tl = av.overlay_offline(tl, av.timeline(host[0], host[1], start, end))
    return av.evaluate(tl, start, end, target, maintenance)


def test_sla_budgets_per_month_match_the_documented_figures():
    assert av.budget_minutes(99.95) == pytest.approx(21.915, abs=1e-3)  # 21.9 min/month
    assert av.budget_minutes(99.99) == pytest.approx(4.383, abs=1e-3)  # 4.4 min/month


def test_a_month_fully_redundant_has_the_whole_budget_left():
    a = evaluate("redundant", [], 0, av.MONTH)
    assert a.uptime_pct == 100.0
    assert a.down == 0 and a.exposure == 0 and a.outages == 0
    assert a.budget / 60 == pytest.approx(21.915, abs=1e-3)
    assert a.budget_left == a.budget


def test_degraded_is_exposure_and_failed_is_down():
    # 0-1000 redundant, 1000-3000 degraded, 3000-3600 failed, 3600-5000 degraded, then redundant
    changes = [(1000, "degraded"), (3000, "failed"), (3600, "degraded"), (5000, "redundant")]
    a = evaluate("redundant", changes, 0, 10_000)
    assert a.down == 600
    assert a.exposure == 2000 + 1400
    assert a.uptime_pct == pytest.approx(94.0)
    assert a.exposure_pct == pytest.approx(34.0)
    assert a.outages == 1
    assert a.budget == pytest.approx(5.0)  # 0.05 % of 10 000 s
    assert a.budget_left == pytest.approx(5.0 - 600)
    d = a.as_dict()
    assert d["outage_minutes"] == pytest.approx(10.0)
    assert d["budget_left_minutes"] == pytest.approx((5.0 - 600) / 60)


def test_maintenance_is_excluded_from_down_exposure_and_the_budget():
    changes = [(1000, "degraded"), (3000, "failed"), (3600, "degraded"), (5000, "redundant")]
    a = evaluate("redundant", changes, 0, 10_000, maintenance=[(2900, 3700)])
    assert a.maintenance == 800
    assert a.down == 0
    assert a.exposure == (2000 - 100) + (1400 - 100)
    assert a.counted == 9200
    assert a.uptime_pct == 100.0
    assert a.budget == pytest.approx(0.0005 * 9200)
    assert a.outages == 0


def test_maintenance_overlapping_the_window_edges_and_each_other():
    a = evaluate("failed", [], 100, 200, maintenance=[(50, 120), (110, 130), (190, 400)])
    assert a.maintenance == 30 + 10  # 100-130 and 190-200
    assert a.down == 60
    assert a.counted == 60
    assert a.uptime_pct == 0.0


def test_host_offline_counts_as_down_for_its_groups():
    # group redundant throughout; its host offline 200-500 (Last Will) and the group failed 700-800
    host = ("redundant", [(200, "offline"), (500, "redundant")])
    a = evaluate("redundant", [(700, "failed"), (800, "redundant")], 0, 1000, host=host)
    assert a.down == 300 + 100
    assert a.outages == 2
    assert a.uptime_pct == pytest.approx(60.0)


def test_offline_following_failed_is_one_outage():
    a = evaluate("redundant", [(100, "failed"), (150, "offline"), (300, "redundant")], 0, 1000)
    assert a.down == 200
    assert a.outages == 1


def test_time_without_data_is_not_counted():
    # nothing known before 400; failed 900-1000
    a = evaluate(None, [(400, "redundant"), (900, "failed")], 0, 1000)
    assert a.no_data == 400
    assert a.counted == 600
    assert a.down == 100
    assert a.uptime_pct == pytest.approx(500 / 600 * 100)


def test_a_gone_group_has_no_data_after_it_went():
    a = evaluate("degraded", [(250, None)], 0, 1000)
    assert a.exposure == 250 and a.no_data == 750 and a.counted == 250


def test_unknown_counts_as_up_but_is_reported():
    a = evaluate("unknown", [(500, "redundant")], 0, 1000)
    assert a.unknown == 500
    assert a.uptime_pct == 100.0


def test_nothing_known_gives_no_percentage():
    a = evaluate(None, [], 0, 1000)
    assert a.uptime_pct is None and a.exposure_pct is None and a.counted == 0


def test_changes_outside_the_window_are_clipped():
    tl = av.timeline(
        "redundant", [(-50, "degraded"), (500, "failed"), (2000, "redundant")], 0, 1000
    )
    assert [(s.start, s.end, s.state) for s in tl] == [(0, 500, "degraded"), (500, 1000, "failed")]


def test_segments_for_the_chart_flag_maintenance():
    a = evaluate("redundant", [(300, "degraded")], 0, 1000, maintenance=[(600, 700)])
    assert [(s.start, s.end, s.state, s.maintenance) for s in a.segments] == [
        (0, 300, "redundant", False),
        (300, 600, "degraded", False),
        (600, 700, "degraded", True),
        (700, 1000, "degraded", False),
    ]


def test_99_99_target_over_a_month_with_five_minutes_down_is_over_budget():
    a = evaluate("redundant", [(1000, "failed"), (1300, "redundant")], 0, av.MONTH, target=99.99)
    assert a.down == 300
    assert a.budget_left / 60 == pytest.approx(4.383 - 5.0, abs=1e-3)
