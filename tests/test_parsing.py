"""Pure parsers used by adapters and report imports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recordings.providers.base import parse_content_range, parse_retry_after
from recordings.providers.parsing import (
    normalize_number,
    parse_clock_duration,
    parse_iso_duration,
    parse_report_datetime,
)
from recordings.providers.reports import ReportColumns, normalize_header


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("PT13.67S", 13.67), ("PT1H2M3S", 3723.0), ("PT5M", 300.0), ("P1DT2S", 86402.0), ("", None), ("13", None)],
)
def test_iso_duration(value, seconds):
    assert parse_iso_duration(value) == seconds


@pytest.mark.parametrize(("value", "seconds"), [("754", 754.0), ("12:34", 754.0), ("1:02:03", 3723.0), ("", None)])
def test_clock_duration(value, seconds):
    assert parse_clock_duration(value) == seconds


def test_clock_duration_rejects_garbage():
    with pytest.raises(ValueError, match="not a duration"):
        parse_clock_duration("ten minutes")


@pytest.mark.parametrize(
    "value",
    [
        "2026-10-03 14:05:22",
        "03/10/2026 14:05:22",
        "03-10-2026 14:05:22",
        "2026-10-03T14:05:22Z",
        "2026-10-03T19:35:22+05:30",
    ],
)
def test_report_datetimes_all_mean_the_same_moment(value):
    assert parse_report_datetime(value) == datetime(2026, 10, 3, 14, 5, 22, tzinfo=UTC)


def test_report_datetime_in_the_accounts_zone():
    assert parse_report_datetime("03/10/2026 19:35:22", tz="Asia/Kolkata") == datetime(
        2026, 10, 3, 14, 5, 22, tzinfo=UTC
    )


@pytest.mark.parametrize("value", ["", "yesterday", "2026-13-45 10:00:00"])
def test_report_datetime_rejects(value):
    with pytest.raises(ValueError):
        parse_report_datetime(value)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("+1 (555) 010-2030", "+15550102030"), ("5550102030", "5550102030"), ("", ""), ("anonymous", "anonymous")],
)
def test_normalize_number(raw, normal):
    assert normalize_number(raw) == normal


def test_retry_after_seconds_and_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait


def test_content_range():
    assert parse_content_range("bytes 0-99/1234") == (0, 99, 1234)
    assert parse_content_range("bytes 5-9/*") == (5, 9, None)
    assert parse_content_range("items 1-2/3") is None


def test_report_columns_any_order_case_bom_and_extras():
    columns = ReportColumns(
        required={"call_id": ("call_id",), "started_at": ("call_time",)}, optional={"agent": ("agent",)}
    )
    mapping = columns.resolve(["Extra", "\ufeffCALL TIME", "Call-ID"])
    assert mapping == {"call_id": "Call-ID", "started_at": "\ufeffCALL TIME"}
    assert normalize_header("\ufeff Recording ID ") == "recording_id"
    with pytest.raises(ValueError, match="no column for started_at"):
        columns.resolve(["call_id"])


@pytest.mark.parametrize(
    ("raw", "direction"),
    [("Inbound", "inbound"), ("OUTBOUND", "outbound"), ("inbound.call.dial", "inbound"),
     ("outbound.manual.dial", "outbound"), ("", "unknown"), (None, "unknown"), ("transfer", "unknown")],
)  # fmt: skip
def test_parse_direction(raw, direction):
    from recordings.providers.parsing import parse_direction

    assert parse_direction(raw) == direction
