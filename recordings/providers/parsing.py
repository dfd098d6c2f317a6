"""Small parsers shared by adapters and report imports (pure functions, unit-tested)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_ISO_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_iso_duration(value: str | None) -> float | None:
    """`PT13.67S`, `PT1H2M`, `P1DT2S` -> seconds (Bandwidth's recording duration)."""
    if not value:
        return None
    match = _ISO_DURATION.match(value.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = match.groups()
    if days is None and hours is None and minutes is None and seconds is None:
        return None
    return round(
        (float(days) * 86400 if days else 0)
        + (float(hours) * 3600 if hours else 0)
        + (float(minutes) * 60 if minutes else 0)
        + (float(seconds) if seconds else 0),
        3,
    )


def parse_clock_duration(value: str | None) -> float | None:
    """`754`, `754.2`, `12:34`, `1:02:03` -> seconds (report talk times)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        if ":" not in text:
            seconds = float(text)
        else:
            seconds = 0.0
            for part in text.split(":"):
                seconds = seconds * 60 + float(part)
    except ValueError:
        raise ValueError(f"not a duration: {text!r}") from None
    if seconds < 0:
        raise ValueError(f"negative duration: {text!r}")
    return seconds


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO-8601 timestamp from an API (`Z` allowed) -> aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.strip())  # Python 3.11 reads `Z` and every offset form
    if parsed.tzinfo is UTC:
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_REPORT_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d/%m/%Y %I:%M:%S %p",
    "%d-%b-%Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
)


def parse_report_datetime(value: str | None, *, tz: str = "UTC") -> datetime:
    """A date-time as reports write it -> aware UTC datetime.

    Reports from Indian providers write day first (03/10/2026 = 3 October); naive times are in `tz`.
    """
    if value is None or not value.strip():
        raise ValueError("missing date")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))  # ISO, with or without an offset
    except ValueError:
        pass
    else:
        if parsed.tzinfo is None:  # a naive time is the account's local time, not UTC
            parsed = parsed.replace(tzinfo=ZoneInfo(tz))
        return parsed.astimezone(UTC)
    for fmt in _REPORT_FORMATS:
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
    raise ValueError(f"unrecognised date {text!r}")


def normalize_number(value: str | None) -> str:
    """Keep a leading + and the digits: `+1 (555) 010-2030` -> `+15550102030`. Empty stays empty."""
    if not value:
        return ""
    text = str(value).strip()
    # Most numbers from APIs are E.164 already, with nothing to take out (isdecimal is what the regex \d keeps).
    plus = text[:1] == "+"
    if (text[1:] if plus else text).isdecimal():
        return text[:21] if plus else text[:20]
    digits = re.sub(r"\D", "", text)
    if not digits:
        return text[:40]
    return ("+" if plus else "") + digits[:20]


def parse_direction(value: str | None) -> str:
    """`Inbound`, `INBOUND`, `inbound.call.dial`, `outbound.manual.dial` -> inbound | outbound | unknown."""
    text = (value or "").strip().lower()
    if text.startswith("in"):
        return "inbound"
    if text.startswith("out"):
        return "outbound"
    return "unknown"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start) / timedelta(seconds=1))
