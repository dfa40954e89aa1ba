"""The bench's pure parts: histograms, the order mix, stage parsing, verdicts, jobs."""

from __future__ import annotations

from decimal import Decimal

from oexec.bench import stages
from oexec.bench.hist import decode, encode, new_histogram, record_us, summarize
from oexec.bench.job import Job, Result
from oexec.bench.mix import order_mix, venue_params
from oexec.bench.report import Report, Row, render, set_ratios
from oexec.bench.targets import CCXT, HTTP_FLOOR, ZMQ_FLOOR, evaluate, oexec_sync


def summary_of(*values_us: int, wall_s: float = 1.0):  # type: ignore[no-untyped-def]
    histogram = new_histogram()
    for value in values_us:
        record_us(histogram, value / 1e6)
    return summarize(histogram, wall_s)


def test_histograms_survive_the_trip_between_processes() -> None:
    histogram = new_histogram()
    for us in (100, 200, 300, 400, 10_000):
        record_us(histogram, us / 1e6)
    again = decode(encode(histogram))
    summary = summarize(again, 2.0)
    assert summary.count == 5 and summary.p50_us == 300
    assert 9_990 <= summary.max_us <= 10_010 and summary.ops_per_s == 2.5


def test_the_mix_is_flat_above_min_notional_and_never_rests() -> None:
    mix = order_mix(Decimal("50000"))
    sides = [spec.side for spec in mix]
    assert sides.count("BUY") == sides.count("SELL")
    for spec in mix:
        assert spec.type == "MARKET" or spec.time_in_force == "IOC"
        assert spec.quantity * Decimal("49000") >= 100
    buy_limit = next(s for s in mix if s.type == "LIMIT" and s.side == "BUY")
    assert buy_limit.price is not None and buy_limit.price < Decimal("50000")
    assert ("newClientOrderId", "x-1") in venue_params(buy_limit, "x-1")


def test_stage_means_are_the_difference_of_two_scrapes_in_path_order() -> None:
    text = (
        'pipeline_stage_duration_seconds_sum{stage="venue"} 3.0\n'
        'pipeline_stage_duration_seconds_count{stage="venue"} 1000.0\n'
        'pipeline_stage_duration_seconds_sum{stage="validation"} 0.5\n'
        'pipeline_stage_duration_seconds_count{stage="validation"} 1000.0\n'
        'pipeline_stage_duration_seconds_bucket{le="0.001",stage="venue"} 3.0\n'
    )
    before = {"venue": (1.0, 500.0)}
    means = stages.mean_us(before, stages.parse(text))
    assert list(means) == ["validation", "venue"]
    assert round(means["venue"]) == 4000 and round(means["validation"]) == 500


def test_stages_inside_the_venue_call_are_listed_under_it() -> None:
    report = Report()
    report.stages["sqlite"] = {"decode": 12.0, "venue": 900.0, "sign": 20.0, "reply": 30.0}
    lines = render(report).splitlines()
    start = lines.index("daemon stages, mean per order (sqlite, sync client):")
    assert [line.split()[0] for line in lines[start + 1 : start + 5]] == [
        "decode",
        "venue",
        "sign",
        "reply",
    ]
    assert lines[start + 3].startswith("    sign (in venue)")


def test_verdicts_follow_the_numbers_and_missing_rows_are_not_measured() -> None:
    report = Report()
    report.rows = [
        Row(ZMQ_FLOOR, summary_of(100)),
        Row(HTTP_FLOOR, summary_of(500)),
        Row(CCXT, summary_of(900, 900, 2000)),
        Row(oexec_sync("sqlite"), summary_of(700, 700, 1500)),
    ]
    set_ratios(report.rows, {1: CCXT})
    verdicts = {t.name: t.met for t in evaluate(report, 64)}
    assert verdicts["oexec sqlite p50 vs ccxt"] is True
    assert verdicts["oexec sqlite p99 vs ccxt"] is True
    assert verdicts["daemon's own time p50"] is True  # 700 - 500 - 100
    assert verdicts["oexec redis vs ccxt, one in flight"] is None
    assert verdicts["throughput ×64"] is None
    assert report.rows[3].ratio_to_ccxt is not None and report.rows[3].ratio_to_ccxt < 1
    assert "NOT MET" not in render(report).split("targets")[0]


def test_a_job_travels_as_json_and_never_shows_its_secret() -> None:
    job = Job(row="ccxt", count=7, api_key="k", api_secret="very-secret")
    assert Job.from_json(job.to_json()) == job
    assert "very-secret" not in repr(job)
    result = Result(wall_s=1.5, outcomes={"ok": 3})
    record_us(result.histogram(), 0.001)
    back = Result.from_json(result.to_json())
    assert back.outcomes == {"ok": 3} and back.histogram().get_total_count() == 1
