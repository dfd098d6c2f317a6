"""Call search: the filter form, the full-text plan and the keyset pages behind /calls/ (see docs/search.md)."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as day_time
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Q, QuerySet, Value
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.http import urlencode

from .models import Call, Direction, ProviderAccount
from .providers import PROVIDER_CHOICES
from .providers.parsing import parse_clock_duration

PAGE_SIZE = 25
# Counts stop here ("1,000+"), and at this many seconds ("many"): no request counts the whole table.
COUNT_CAP = 1000
COUNT_BUDGET = 0.02
Q_MAX_LENGTH = 200
MAX_TERMS = 8
# Trigram indexes (FTS5 trigram, pg_trgm) find substrings of three characters or more.
MIN_SUBSTRING = 3
MIN_NUMBER_DIGITS = 3
# Plans for a free-text condition (docs/search.md, "Plans"): one matching at most DRIVING_CAP rows drives the query
# (its ids first, then sort them); a commoner one is checked row by row while an index walks the calls in sort
# order -- against the set of matching transcripts up to SET_CAP of them, through the full-text index beyond.
# If that walk takes longer than WALK_BUDGET seconds (other filters make the matches sparse), the query is run
# again driven by the full-text index.
DRIVING_CAP = 5_000
SET_CAP = 30_000
WALK_BUDGET = 0.04
# The PostgreSQL fallback splits the free-text conditions into at most this many UNION parts.
MAX_BRANCHES = 4
# Before walking, a sample of a common condition's matches (PROBE_SAMPLE of each index, nearest the start of the
# sort order) is checked against the other filters. If none passes and the other filters keep more than
# LARGE_FILTER calls (counted through an index, capped, within PROBE_BUDGET), the walk would read a long way for
# few results, so the full-text index drives the query from the start (docs/search.md, "Plans").
PROBE_SAMPLE = 100
LARGE_FILTER = 20_000
PROBE_BUDGET = 0.005
# SQLite: the filter columns keyed by call id (migration 0005), which the fallback reads instead of the call rows.
FILTERS_BY_ID = "call_filters_by_id_idx"
# PostgreSQL's statistics see a pattern in at least this share of the calls.
COMMON_SHARE = 0.05
# A duration range with at most this many calls is read through its index, then sorted (SQLite).
NARROW_RANGE = 10_000

FILTERS = (
    "q", "provider", "account", "direction", "number", "agent", "campaign",
    "date_from", "date_to", "min_duration", "max_duration", "has_transcript",
)  # fmt: skip
DEFAULT_SORT = "-started"
SORT_CHOICES = [
    ("-started", "Newest first"),
    ("started", "Oldest first"),
    ("-duration", "Longest first"),
    ("duration", "Shortest first"),
]
MIN_DAY, MAX_DAY = date(1900, 1, 1), date(2999, 12, 31)
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d %b %Y", "%d %B %Y", "%Y/%m/%d"]
_PHONE = re.compile(r"^\+?[\d\s().\-/]+$")
_UNITS = re.compile(
    r"^(?:(?P<h>\d+)\s*h(?:ours?)?)?\s*(?:(?P<m>\d+)\s*m(?:in(?:utes?)?)?)?\s*(?:(?P<s>\d+)\s*s(?:ec)?)?$"
)
_TERMS = re.compile(r'"([^"]*)"|(\S+)')


def display_zone() -> ZoneInfo:
    """The zone in which the search shows times and reads dates (settings.PORTAL_TIME_ZONE)."""
    return ZoneInfo(settings.PORTAL_TIME_ZONE)


# ---------------------------------------------------------------------------------------------------------- form


class DurationField(forms.Field):
    """Seconds (`90`), clock time (`1:30`, `1:02:03`) or units (`2m`, `1h 5m`, `45s`)."""

    widget = forms.TextInput
    default_error_messages = {"invalid": "Enter a duration such as 90, 1:30 or 2m."}

    def to_python(self, value) -> float | None:
        text = str(value or "").strip()
        if not text:
            return None
        if text.startswith("-"):
            raise forms.ValidationError("A duration cannot be negative.", code="negative")
        seconds = None
        if len(text) > 20:
            pass
        elif re.fullmatch(r"\d+(?:\.\d+)?(?::\d{1,2}(?:\.\d+)?){0,2}", text):
            seconds = parse_clock_duration(text)
        elif (match := _UNITS.fullmatch(text.lower())) and any(match.groupdict().values()):
            parts = {k: int(v) for k, v in match.groupdict().items() if v}
            seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
        if seconds is None or not math.isfinite(seconds) or seconds > 30 * 86400:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return float(seconds)

    def widget_attrs(self, widget) -> dict:
        return {**super().widget_attrs(widget), "maxlength": "20"}


class DayField(forms.DateField):
    """A day, as the date picker sends it (2026-10-01) or as people type it (01/10/2026, 1 Oct 2026)."""

    def __init__(self, **kwargs) -> None:
        widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        super().__init__(input_formats=DATE_FORMATS, widget=widget, **kwargs)

    def to_python(self, value) -> date | None:
        try:
            day = super().to_python(value)
        except forms.ValidationError:
            # The date input cannot show what it cannot parse, so the message repeats it.
            raise forms.ValidationError(
                "“%(value)s” is not a date; pick one or type it like 2026-10-01.",
                code="invalid",
                params={"value": str(value)[:30]},
            ) from None
        # Far dates would overflow on the way to UTC midnights (year 1 in a zone east of UTC, 31 Dec 9999 + 1 day).
        if day is not None and not MIN_DAY <= day <= MAX_DAY:
            raise forms.ValidationError(
                "Pick a date between %(low)s and %(high)s.",
                code="out_of_range",
                params={"low": MIN_DAY.year, "high": MAX_DAY.year},
            )
        return day


class TranscriptChoiceField(forms.ChoiceField):
    """Any / with / without a transcript; accepts yes/no, true/false, 1/0, on/off."""

    SYNONYMS = {"true": "yes", "1": "yes", "on": "yes", "y": "yes", "false": "no", "0": "no", "off": "no", "n": "no"}

    def to_python(self, value) -> str:
        text = super().to_python(value).strip().lower()
        return self.SYNONYMS.get(text, text)


class CallSearchForm(forms.Form):
    """The GET parameters of /calls/ (ARCHITECTURE.md, Contract). Valid data gives `.search` and `.position`."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=Q_MAX_LENGTH,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Number, agent, campaign, call ID or words said",
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
    number = forms.CharField(
        label="Phone number",
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off", "placeholder": "any 3+ digits"}),
    )
    provider = forms.ChoiceField(label="Provider", required=False, choices=[("", "All providers"), *PROVIDER_CHOICES])
    account = forms.ModelChoiceField(
        label="Account", required=False, queryset=ProviderAccount.objects.order_by("name"), empty_label="All accounts"
    )
    direction = forms.ChoiceField(label="Direction", required=False, choices=[("", "Any"), *Direction.choices])
    agent = forms.CharField(
        label="Agent", required=False, max_length=200, widget=forms.TextInput(attrs={"placeholder": "full name"})
    )
    campaign = forms.CharField(
        label="Campaign", required=False, max_length=200, widget=forms.TextInput(attrs={"placeholder": "full name"})
    )
    date_from = DayField(label="From", required=False)
    date_to = DayField(label="To", required=False)
    min_duration = DurationField(
        label="Min length", required=False, widget=forms.TextInput(attrs={"placeholder": "m:ss"})
    )
    max_duration = DurationField(
        label="Max length", required=False, widget=forms.TextInput(attrs={"placeholder": "m:ss"})
    )
    has_transcript = TranscriptChoiceField(
        label="Transcript", required=False, choices=[("", "Any"), ("yes", "With transcript"), ("no", "Without")]
    )
    sort = forms.ChoiceField(label="Sort", required=False, choices=SORT_CHOICES)
    cursor = forms.CharField(required=False, max_length=400, widget=forms.HiddenInput)

    def __init__(self, data: Mapping | None = None, **kwargs) -> None:
        data = {name: _value(data, name) for name in self.base_fields} if data is not None else {}
        for name in ("date_from", "date_to"):
            # Typed dates become ISO, which the date input can show and the pushed URL repeats.
            day = _parse_day(data.get(name, ""))
            if day is not None:
                data[name] = day.isoformat()
        super().__init__(data, **kwargs)
        for name, form_field in self.fields.items():
            form_field.widget.attrs.setdefault("aria-describedby", f"id_{name}_errors")

    def clean_number(self) -> str:
        text = self.cleaned_data["number"]
        if not text:
            return ""
        digits = re.sub(r"\D", "", text)
        if not _PHONE.match(text):
            raise forms.ValidationError("Enter digits of a phone number, e.g. +1 (555) 010-2030 or 2030.")
        if len(digits) < MIN_NUMBER_DIGITS:
            raise forms.ValidationError(f"Enter at least {MIN_NUMBER_DIGITS} digits.")
        return _national_digits(text, digits)

    def clean_q(self) -> str:
        text = " ".join(self.cleaned_data["q"].split())
        if len(_terms(text)) > MAX_TERMS:
            raise forms.ValidationError(f"Use at most {MAX_TERMS} words (or put a phrase in quotes).")
        return text

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or DEFAULT_SORT

    def clean_cursor(self) -> Cursor | None:
        text = self.cleaned_data["cursor"]
        if not text:
            return None
        try:
            return Cursor.decode(text)
        except ValueError:
            raise forms.ValidationError("This page link is damaged or out of date.") from None

    def clean(self) -> dict:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        low, high = data.get("min_duration"), data.get("max_duration")
        if low is not None and high is not None and low > high:
            self.add_error("max_duration", "The maximum is shorter than the minimum.")
        cursor = data.get("cursor")
        if cursor is not None and data.get("sort") and cursor.sort != data["sort"]:
            self.add_error("cursor", "This page link belongs to another sort order.")
        return data

    @property
    def search(self) -> CallSearch:
        """The valid filters as the selector's argument."""
        data, zone = self.cleaned_data, display_zone()
        account = data.get("account")
        return CallSearch(
            q=data.get("q", ""),
            provider=data.get("provider", ""),
            account_id=account.pk if account else None,
            direction=data.get("direction", ""),
            number=data.get("number", ""),
            agent=data.get("agent", ""),
            campaign=data.get("campaign", ""),
            started_from=_local_midnight(data["date_from"], zone) if data.get("date_from") else None,
            started_before=_local_midnight(data["date_to"] + timedelta(days=1), zone) if data.get("date_to") else None,
            min_duration=data.get("min_duration"),
            max_duration=data.get("max_duration"),
            has_transcript={"yes": True, "no": False}.get(data.get("has_transcript", "")),
            sort=data.get("sort") or DEFAULT_SORT,
        )

    @property
    def position(self) -> Cursor | None:
        """The decoded `cursor` parameter."""
        return self.cleaned_data.get("cursor")

    @property
    def has_filters(self) -> bool:
        return any(self.data.get(name) for name in FILTERS)

    def querystring(self, *, cursor: str | None = None, sort: str | None = None, skip_invalid: bool = False) -> str:
        """The canonical query string of this search as typed: non-empty filters, the sort unless default, cursor."""
        pairs = []
        for name in FILTERS:
            value = self.data.get(name, "")
            if value and not (skip_invalid and name in self.errors):
                pairs.append((name, value))
        sort = sort or self.data.get("sort", "")
        if sort and sort != DEFAULT_SORT and not (skip_invalid and "sort" in self.errors):
            pairs.append(("sort", sort))
        if cursor:
            pairs.append(("cursor", cursor))
        return urlencode(pairs)

    def url(self, **kwargs) -> str:
        query = self.querystring(**kwargs)
        return reverse("calls") + (f"?{query}" if query else "")


@dataclass(frozen=True)
class SearchLinks:
    """The URLs a results page links to, each reproducing the search (hx-get and href alike)."""

    here: str  # query string of this page, carried to the call page for previous/next
    next: str | None
    previous: str | None
    first: str
    without_invalid: str
    sort: dict[str, str]  # column -> URL sorting by it (toggling the direction when it is the current sort)
    current_sort: str
    export_query: str = ""  # the search without its page, for the CSV of every result
    export_params: tuple[tuple[str, str], ...] = ()  # the same as hidden fields of the export form


def search_links(form: CallSearchForm, page: SearchPage | None) -> SearchLinks:
    cursor = form.data.get("cursor") or None
    current = (form.cleaned_data.get("sort") or DEFAULT_SORT) if form.is_valid() else DEFAULT_SORT
    toggles = {"started": ("-started", "started"), "duration": ("-duration", "duration")}
    return SearchLinks(
        here=form.querystring(cursor=cursor if page and not page.is_first else None),
        next=form.url(cursor=page.next_cursor) if page and page.next_cursor else None,
        previous=form.url(cursor=page.previous_cursor) if page and page.previous_cursor else None,
        first=form.url(),
        without_invalid=form.url(skip_invalid=True),
        sort={
            column: form.url(sort=second if current == first else first) for column, (first, second) in toggles.items()
        },
        current_sort=current,
        export_query=form.querystring(),
        export_params=tuple(parse_qsl(form.querystring())),
    )


def _value(data: Mapping, name: str) -> str:
    """One parameter as a stripped string (the last one when repeated, like QueryDict.get)."""
    value = data.get(name, "")
    return value.strip() if isinstance(value, str) else str(value or "").strip()


def _parse_day(text: str) -> date | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _national_digits(text: str, digits: str) -> str:
    """`020 7946 0018` typed the national way: drop the trunk 0 (or the 00 international prefix) to match E.164."""
    if not text.lstrip().startswith("+") and len(digits) >= 9 and digits.startswith("0"):
        return digits[2:] if digits.startswith("00") else digits[1:]
    return digits


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, day_time.min, tzinfo=zone)


def _terms(text: str) -> list[str]:
    terms = []
    for quoted, word in _TERMS.findall(text):
        term = " ".join((quoted or word).split())
        if term and term not in terms:
            terms.append(term)
    return terms


# ------------------------------------------------------------------------------------------------------ cursors


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool
    nullable: bool  # rows without a value come after all others, in both directions


SORTS = {
    "-started": Order("started_at", descending=True, nullable=False),
    "started": Order("started_at", descending=False, nullable=False),
    "-duration": Order("duration", descending=True, nullable=True),
    "duration": Order("duration", descending=False, nullable=True),
}


@dataclass(frozen=True)
class Cursor:
    """A position in the results: the sort key of a row, and whether the page ends (backwards) or starts after it."""

    sort: str
    value: datetime | float | None
    id: int
    backwards: bool = False

    @classmethod
    def at(cls, call: Call, sort: str, *, backwards: bool = False) -> Cursor:
        return cls(sort, getattr(call, SORTS[sort].field), call.pk, backwards)

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        payload = json.dumps([self.sort, value, self.id, int(self.backwards)], separators=(",", ":"))
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ValueError for anything this module did not write."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            sort, value, pk, backwards = json.loads(raw)
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError):
            raise ValueError("not a cursor") from None
        # Ids and times outside what the database stores would overflow there (a 500), not just match nothing.
        if sort not in SORTS or type(pk) is not int or not 1 <= pk < 2**63 or backwards not in (0, 1):
            raise ValueError("not a cursor")
        if SORTS[sort].field == "started_at":
            if not isinstance(value, str):
                raise ValueError("not a cursor")
            value = datetime.fromisoformat(value)
            if value.tzinfo is None or not MIN_DAY.year <= value.year <= MAX_DAY.year:
                raise ValueError("not a cursor")
        elif value is not None and (type(value) not in (int, float) or not math.isfinite(value)):
            raise ValueError("not a cursor")
        return cls(sort, float(value) if isinstance(value, int) else value, pk, bool(backwards))


# ---------------------------------------------------------------------------------------------------- selectors


@dataclass(frozen=True)
class CallSearch:
    """Validated filters (CallSearchForm.search). Empty strings and None mean "any"."""

    q: str = ""
    provider: str = ""
    account_id: int | None = None
    direction: str = ""
    number: str = ""  # digits
    agent: str = ""
    campaign: str = ""
    started_from: datetime | None = None  # inclusive
    started_before: datetime | None = None  # exclusive
    min_duration: float | None = None
    max_duration: float | None = None
    has_transcript: bool | None = None
    sort: str = DEFAULT_SORT


@dataclass
class SearchPage:
    calls: list[Call]
    next_cursor: str | None
    previous_cursor: str | None
    count: int | None  # calls known to match, at most COUNT_CAP; None when counting took too long
    more: bool  # more than `count` match

    @property
    def is_first(self) -> bool:
        return self.previous_cursor is None


def search_calls(*, search: CallSearch, cursor: Cursor | None = None, page_size: int = PAGE_SIZE) -> SearchPage:
    """One page of calls matching `search`, in its sort order, starting after (or ending before) `cursor`."""
    plan = plan_search(search)
    if plan is None:
        return SearchPage([], None, None, 0, False)
    order = SORTS[search.sort]
    if cursor is not None and cursor.sort != search.sort:
        cursor = None
    backwards = cursor is not None and cursor.backwards
    rows = plan.run(lambda qs: _walk(qs.defer("raw"), order, cursor, forward=not backwards, limit=page_size + 1))
    if backwards:
        has_previous, has_next = len(rows) > page_size, True
        rows = rows[:page_size][::-1]
        if not has_previous and len(rows) < page_size:  # back at the start, and calls have gone: a full first page
            return search_calls(search=search, page_size=page_size)
    else:
        has_previous, has_next = cursor is not None, len(rows) > page_size
        rows = rows[:page_size]
    if not (has_previous or has_next):
        count = len(rows)
    else:  # a common free-text match walks the index checking rows: counting them would read far more
        count = None if plan.fallback is not None else capped_count(plan.counting)
    return SearchPage(
        calls=rows,
        next_cursor=Cursor.at(rows[-1], search.sort).encode() if has_next and rows else None,
        previous_cursor=Cursor.at(rows[0], search.sort, backwards=True).encode() if has_previous and rows else None,
        count=None if count is None else min(count, COUNT_CAP),
        more=count is None or count > COUNT_CAP,
    )


def neighbours(call: Call, params: Mapping) -> tuple[int | None, int | None]:
    """The ids of the calls before and after `call` in the results of the search in `params` (a query dict).

    Keyset-based: two queries of one row each, plus the full-text look-ups when `q` or `number` is set.
    (None, None) when the parameters are invalid.
    """
    form = CallSearchForm(params)
    if not form.is_valid():
        return None, None
    search = form.search
    plan = plan_search(search)
    if plan is None:
        return None, None
    order = SORTS[search.sort]
    position = Cursor.at(call, search.sort)

    def both(queryset: QuerySet[Call]) -> tuple[list[Call], list[Call]]:
        queryset = queryset.only("id")
        return (
            _walk(queryset, order, position, forward=False, limit=1),
            _walk(queryset, order, position, forward=True, limit=1),
        )

    before, after = plan.run(both)
    return (before[0].pk if before else None), (after[0].pk if after else None)


def capped_count(queryset: QuerySet) -> int | None:
    """How many rows match, up to COUNT_CAP + 1; None when counting takes longer than COUNT_BUDGET.

    A sparse combination of filters can make even a capped count read much of an index, so the count gets a
    time budget of its own.
    """
    done, count = within(COUNT_BUDGET, lambda: queryset.order_by()[: COUNT_CAP + 1].count())
    return count if done else None


def within(seconds: float, work):
    """(True, work()) if the database finishes it within `seconds`, else (False, None).

    SQLite aborts from a progress handler; PostgreSQL through a transaction-local statement_timeout.
    """
    try:
        if connection.vendor == "sqlite":
            connection.ensure_connection()
            deadline = time.monotonic() + seconds
            connection.connection.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
            try:
                return True, work()
            finally:
                connection.connection.set_progress_handler(None, 0)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
                    [f"{max(1, round(seconds * 1000))}ms"],
                )
                previous = cursor.fetchone()[0]
            result = work()
            # SET LOCAL lasts to the end of the outermost transaction (a test's, or ATOMIC_REQUESTS): undo it.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
            return True, result
    except OperationalError as error:
        if _interrupted(error):
            return False, None
        raise


def _interrupted(error: OperationalError) -> bool:
    cause = error.__cause__
    if connection.vendor == "sqlite":
        return "interrupted" in str(cause or error)
    return getattr(cause, "sqlstate", None) == "57014"  # query_canceled


@dataclass
class Plan:
    """The filtered calls as the preferred query, and, when that one walks an index checking rows, a fallback
    driven by the full-text index for when the walk takes too long."""

    queryset: QuerySet[Call]
    counting: QuerySet[Call]  # the same calls, for a count (which has no order to keep)
    fallback: QuerySet[Call] | None = None
    walk: bool = True  # False: the probe found the walk hopeless, the fallback runs straight away

    def run(self, work):
        """work(the queryset), or work(the fallback) if that takes longer than WALK_BUDGET (or is not worth trying)."""
        if self.fallback is None:
            return work(self.queryset)
        if not self.walk:
            return work(self.fallback)
        done, result = within(WALK_BUDGET, lambda: work(self.queryset))
        return result if done else work(self.fallback)


def plan_search(search: CallSearch) -> Plan | None:
    """The calls matching every filter, unordered; None when a free-text condition matches nothing at all.

    SQLite has no statistics unless someone runs ANALYZE, so it guesses which index to read, and a wrong guess
    sorts a fifth of the table. So on SQLite, filters that keep many rows (a provider is a fifth of the calls) do
    not pick their index unless the sort comes from it too, and a duration range drives the query only when it is
    narrow (unary + keeps SQLite from using an index for a term). PostgreSQL plans from its statistics.
    """
    order = SORTS[search.sort]
    sqlite = connection.vendor == "sqlite"
    in_range = None
    if search.min_duration is not None or search.max_duration is not None:
        in_range = Call.objects.all()
        if search.min_duration is not None:
            in_range = in_range.filter(duration__gte=search.min_duration)
        if search.max_duration is not None:
            in_range = in_range.filter(duration__lte=search.max_duration)
    by_start = order.field == "started_at"
    narrow = (
        sqlite and by_start and in_range is not None
        and in_range.order_by()[: NARROW_RANGE + 1].count() <= NARROW_RANGE
    )  # fmt: skip

    def structured(*, coarse_index: bool, dates: bool = True) -> QuerySet[Call]:
        coarse = _indexed if coarse_index else _not_indexed
        queryset = Call.objects.all()
        if search.provider:
            queryset = coarse(queryset, "provider", search.provider)
        if search.account_id is not None:
            queryset = coarse(queryset, "account_id", search.account_id)
        if search.direction:
            queryset = coarse(queryset, "direction", search.direction)
        if search.has_transcript is not None:
            queryset = coarse(queryset, "has_transcript", search.has_transcript)
        if search.agent:
            queryset = queryset.alias(agent_ci=Lower("agent")).filter(agent_ci=Lower(Value(search.agent)))
        if search.campaign:
            queryset = queryset.alias(campaign_ci=Lower("campaign")).filter(campaign_ci=Lower(Value(search.campaign)))
        if dates and search.started_from is not None:
            queryset = queryset.filter(started_at__gte=search.started_from)
        if dates and search.started_before is not None:
            queryset = queryset.filter(started_at__lt=search.started_before)
        if narrow:  # its ids, from its index, drive the query
            queryset = queryset.filter(id__in=in_range.values("id"))
        elif in_range is not None:
            durations = _not_indexed if sqlite and by_start else _indexed
            if search.min_duration is not None:
                queryset = durations(queryset, "duration", search.min_duration, ">=")
            if search.max_duration is not None:
                queryset = durations(queryset, "duration", search.max_duration, "<=")
        return queryset

    queryset = structured(coarse_index=not sqlite or (by_start and not narrow))
    fulltext = _fulltext()
    # Per condition: its filter in `queryset`, its filter driven by the full-text index, and (PostgreSQL) one
    # plain predicate per index that matched, whose OR is the condition.
    conditions: list[tuple[Expression, Q, list[Expression]]] = []
    samples: list[tuple[int, RawSQL]] = []  # (index in conditions, a sample of the matches) of the common ones
    dense = False
    for condition in text_conditions(search):
        matches = fulltext.matches(condition)
        if not matches.calls and not matches.words:
            return None
        if matches.calls + matches.words <= DRIVING_CAP:
            listed = RawSQL(*fulltext.listed(condition, matches), output_field=BooleanField())  # noqa: S611
            conditions.append((listed, listed, [listed]))
            continue
        dense = True
        check = RawSQL(*fulltext.row_check(condition, matches), output_field=BooleanField())  # noqa: S611
        driven = Q(id__in=RawSQL(*fulltext.driving(condition, matches)))  # noqa: S611
        sources = [RawSQL(*source, output_field=BooleanField()) for source in fulltext.sources(condition, matches)]  # noqa: S611
        newest = search.sort != "started"
        sample = RawSQL(*fulltext.sample(condition, matches, newest=newest), output_field=BooleanField())  # noqa: S611
        samples.append((len(conditions), sample))
        conditions.append((check, driven, sources))
    counting = structured(coarse_index=True)  # a count has no order to keep: any index will do
    for check, _, _ in conditions:
        queryset, counting = queryset.filter(check), counting.filter(check)
    if not dense:
        return Plan(queryset, counting)
    # The full-text index drives the fallback: no other filter may pick an index on SQLite.
    fallback = structured(coarse_index=not sqlite)
    for _, driven, _ in conditions:
        fallback = fallback.filter(driven)
    if sqlite:
        # Each id the full-text index found is checked against the other filters in an index of just those
        # columns keyed by id (migration 0005): a fraction of the pages the call rows would take.
        sql, params = fallback.order_by().values("id").query.sql_with_params()
        sql = sql.replace('FROM "recordings_call"', f'FROM "recordings_call" INDEXED BY {FILTERS_BY_ID}', 1)
        fallback = Call.objects.filter(RawSQL(f"recordings_call.id IN ({sql})", params, output_field=BooleanField()))  # noqa: S611
    else:
        # PostgreSQL plans a LIMIT query hoping to stop early, which is the walk that just ran out of time: plan
        # the whole set of matches without the LIMIT, computed once (ARRAY() is an InitPlan), then sort that.
        # As a UNION of plain predicates (one per index that matched), each part can AND its bitmaps with the
        # other filters' (a provider's 150,000 rows and a name's 47,000 then meet in the index, not the heap).
        branches = [structured(coarse_index=True)]
        for _, _, sources in conditions:
            branches = [branch.filter(source) for branch in branches for source in sources]
        if len(branches) <= MAX_BRANCHES:
            ids = [branch.order_by().values("id") for branch in branches]
            every = ids[0].union(*ids[1:])
        else:
            every = fallback.order_by().values("id")
        sql, params = every.query.sql_with_params()
        within_every = RawSQL(f"recordings_call.id = ANY(ARRAY({sql}))", params, output_field=BooleanField())  # noqa: S611
        fallback = Call.objects.filter(within_every)
    others = structured(coarse_index=not sqlite, dates=False)  # dates follow the ids: a sample would mislead
    checks = [check for check, _, _ in conditions]
    walk = not walk_hopeless(others, structured(coarse_index=True), checks, samples)
    return Plan(queryset, counting, fallback, walk=walk)


def walk_hopeless(
    others: QuerySet[Call], filtered: QuerySet[Call], checks: list[Expression], samples: list[tuple[int, RawSQL]]
) -> bool:
    """Whether walking the calls in sort order, checking each for the common free-text conditions, would read a long
    way: no call of a sample of some common condition's matches meets the other filters (`others`: the structured
    filters except dates, then the other conditions' checks), and the calls of the structured filters (`filtered`)
    are more than LARGE_FILTER. One query per common condition (a look-up per sampled id, stopping at the first that
    passes), plus the capped count; then the full-text index drives the query instead.
    """
    if len(checks) == 1 and not others.query.where:
        return False  # nothing else to meet: the walk finds a common condition's matches at once
    for index, sample in samples:
        probe = others.filter(sample)
        for other, check in enumerate(checks):
            if other != index:
                probe = probe.filter(check)
        if not probe.exists():
            break
    else:
        return False
    done, count = within(PROBE_BUDGET, lambda: filtered.order_by()[: LARGE_FILTER + 1].count())
    return not done or count > LARGE_FILTER


_LOOKUPS = {"=": "exact", ">=": "gte", "<=": "lte"}


def _indexed(queryset: QuerySet, field: str, value, operator: str = "=") -> QuerySet:
    return queryset.filter(**{f"{field}__{_LOOKUPS[operator]}": value})


def _not_indexed(queryset: QuerySet, field: str, value, operator: str = "=") -> QuerySet:
    column = Call._meta.get_field(field).column
    sql = f'+"recordings_call"."{column}" {operator} %s'
    return queryset.filter(RawSQL(sql, [value], output_field=BooleanField()))  # noqa: S611


def _walk(queryset: QuerySet[Call], order: Order, position: Cursor | None, *, forward: bool, limit: int) -> list[Call]:
    """Up to `limit` calls strictly after `position` in the sort order (before it when not `forward`), nearest first.

    A nullable sort key (duration) has two segments: the rows with a value, then the rows without one ordered by id.
    Each segment is read through an index in order: `field <= v AND (field < v OR id < pk)` bounds the index range.
    """
    descending = order.descending if forward else not order.descending
    segments = [False, True] if order.nullable else [False]  # is the key null?
    if not forward:
        segments.reverse()
    if position is not None:
        segments = segments[segments.index(order.nullable and position.value is None) :]
    rows: list[Call] = []
    for null in segments:
        part = queryset.filter(**{f"{order.field}__isnull": True}) if null else queryset
        if order.nullable and not null:
            part = part.filter(**{f"{order.field}__isnull": False})
        field = None if null else order.field
        if position is not None and null == (order.nullable and position.value is None):
            part = part.filter(_beyond(field, position.value, position.id, descending=descending))
        sign = "-" if descending else ""
        ordering = [f"{sign}{field}", f"{sign}id"] if field else [f"{sign}id"]
        rows += list(part.order_by(*ordering)[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


def _beyond(field: str | None, value, pk: int, *, descending: bool) -> Q:
    if field is None:
        return Q(id__lt=pk) if descending else Q(id__gt=pk)
    if descending:
        return Q(**{f"{field}__lte": value}) & (Q(**{f"{field}__lt": value}) | Q(id__lt=pk))
    return Q(**{f"{field}__gte": value}) & (Q(**{f"{field}__gt": value}) | Q(id__gt=pk))


# ---------------------------------------------------------------------------------------------------- full text
# The SQL below is built from constant fragments only; every value typed by a user goes as a query parameter
# (hence the S608/S611 exemptions).


@dataclass(frozen=True)
class TextCondition:
    """One condition a call must meet; it does when any of its sources matches.

    number: the digits are a substring of either number. phone (a `q` that looks like a number): the same, or `raw`
    is a substring of agent/campaign/remote id. term (one word or quoted phrase of `q`): a substring of the numbers,
    agent, campaign or remote id (3+ characters), or words of a transcript of one of the call's recordings.
    """

    kind: str
    text: str
    raw: str = ""

    @property
    def substring(self) -> bool:
        return len(self.text) >= MIN_SUBSTRING

    @property
    def words(self) -> bool:
        return self.kind == "term" and bool(re.search(r"\w", self.text))


def text_conditions(search: CallSearch) -> list[TextCondition]:
    conditions = []
    if search.number:
        conditions.append(TextCondition("number", search.number))
    q = search.q
    if q:
        digits = re.sub(r"\D", "", q)
        if _PHONE.match(q) and len(digits) >= MIN_NUMBER_DIGITS:
            conditions.append(TextCondition("phone", _national_digits(q, digits), raw=q.lower()))
        else:
            conditions += [TextCondition("term", term) for term in _terms(q.lower())]
    return [c for c in conditions if c.substring or c.words]


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@dataclass
class Matches:
    """How many rows a condition matches in each index (counted up to a cap on SQLite, the planner's estimate on
    PostgreSQL), and the ids found when the backend kept them."""

    calls: int
    words: int
    call_ids: str = "[]"  # JSON arrays (SQLite)
    transcript_ids: str = "[]"


_TRANSCRIPT_CALLS = (
    "SELECT r.call_id FROM recordings_recording r JOIN recordings_transcript t ON t.recording_id = r.id WHERE {}"
)


class SqliteFullText:
    """FTS5 tables kept by the triggers of migration 0003: recordings_call_fts (trigram), recordings_transcript_fts.

    The ids found are collected once, as a JSON array built by SQLite, and passed back (json_each), so that no
    full-text query runs twice.
    """

    def _queries(self, c: TextCondition) -> tuple[str | None, str | None]:
        if c.kind == "number":
            return f"number_digits : {_phrase(c.text)}", None
        if c.kind == "phone":
            return f"number_digits : {_phrase(c.text)} OR search_text : {_phrase(c.raw)}", None
        return (_phrase(c.text) if c.substring else None), (_phrase(c.text) if c.words else None)

    def _found(self, table: str, query: str, limit: int) -> tuple[int, str]:
        """How many rows of the FTS table match (up to `limit`) and their rowids as a JSON array, built by SQLite."""
        sql = (
            f"SELECT count(*), json_group_array(rowid) FROM (SELECT rowid FROM {table} WHERE {table} MATCH %s LIMIT %s)"  # noqa: S608
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [query, limit])
            return cursor.fetchone()

    def matches(self, c: TextCondition) -> Matches:
        query, words = self._queries(c)
        calls, call_ids = self._found("recordings_call_fts", query, DRIVING_CAP + 1) if query else (0, "[]")
        found, transcript_ids = self._found("recordings_transcript_fts", words, SET_CAP + 1) if words else (0, "[]")
        return Matches(calls, found, call_ids, transcript_ids)

    def listed(self, c: TextCondition, m: Matches) -> tuple[str, list]:
        """The call is one of those found: the ids of calls and transcripts found drive the query."""
        sql = "SELECT value FROM json_each(%s)"
        if m.words:
            sql += " UNION " + _TRANSCRIPT_CALLS.format("t.id IN (SELECT value FROM json_each(%s))")  # noqa: S608
            return f"recordings_call.id IN ({sql})", [m.call_ids, m.transcript_ids]
        return f"recordings_call.id IN ({sql})", [m.call_ids]

    def row_check(self, c: TextCondition, m: Matches) -> tuple[str, list]:
        """Whether the row matches, tested while an index walks the calls in sort order.

        The call-side test is the trigram MATCH's own substring test on the row. A transcript is tested against
        the set of matching transcripts (built once), or, past SET_CAP of them, through the index per row.
        """
        checks, params = [], []
        if m.calls:
            if c.kind == "number":
                checks.append("instr(recordings_call.number_digits, %s) > 0")
                params.append(c.text)
            elif c.kind == "phone":
                checks.append(
                    "instr(recordings_call.number_digits, %s) > 0 OR instr(recordings_call.search_text, %s) > 0"
                )
                params += [c.text, c.raw]
            else:
                checks.append(
                    "instr(recordings_call.search_text, %s) > 0 OR instr(recordings_call.number_digits, %s) > 0"
                )
                params += [c.text, c.text]
        if m.words and m.words <= SET_CAP:
            # + keeps SQLite from driving the look-up by the list (a seek per listed id, per row).
            check = "r.call_id = recordings_call.id AND +t.id IN (SELECT value FROM json_each(%s))"
            checks.append("EXISTS (" + _TRANSCRIPT_CALLS.format(check) + ")")
            params.append(m.transcript_ids)
        elif m.words:
            check = (
                "r.call_id = recordings_call.id AND EXISTS (SELECT 1 FROM recordings_transcript_fts"
                " WHERE recordings_transcript_fts MATCH %s AND rowid = t.id)"
            )
            checks.append("EXISTS (" + _TRANSCRIPT_CALLS.format(check) + ")")
            params.append(self._queries(c)[1])
        return "(" + " OR ".join(f"({check})" for check in checks) + ")", params

    def sources(self, c: TextCondition, m: Matches) -> list[tuple[str, list]]:
        """Not needed: SQLite's fallback is driven by the full-text index."""
        return []

    def sample(self, c: TextCondition, m: Matches, *, newest: bool) -> tuple[str, list]:
        """The call is one of PROBE_SAMPLE matches of each index, the newest ids (or the oldest) first."""
        query, words = self._queries(c)
        direction = "DESC" if newest else "ASC"
        parts, params = [], []
        if m.calls:
            parts.append(
                "SELECT * FROM (SELECT rowid FROM recordings_call_fts WHERE recordings_call_fts MATCH %s"  # noqa: S608
                f" ORDER BY rowid {direction} LIMIT %s)"
            )
            params += [query, PROBE_SAMPLE]
        if m.words:
            found = (
                "t.id IN (SELECT rowid FROM recordings_transcript_fts WHERE recordings_transcript_fts MATCH %s"  # noqa: S608
                f" ORDER BY rowid {direction} LIMIT %s)"
            )
            parts.append(_TRANSCRIPT_CALLS.format(found))
            params += [words, PROBE_SAMPLE]
        return f"recordings_call.id IN ({' UNION '.join(parts)})", params

    def driving(self, c: TextCondition, m: Matches) -> tuple[str, list]:
        """The ids of calls matched, straight from the full-text indexes that matched anything."""
        query, words = self._queries(c)
        parts, params = [], []
        if m.calls:
            parts.append("SELECT rowid FROM recordings_call_fts WHERE recordings_call_fts MATCH %s")
            params.append(query)
        if m.words:
            parts.append(
                _TRANSCRIPT_CALLS.format(
                    "t.id IN (SELECT rowid FROM recordings_transcript_fts WHERE recordings_transcript_fts MATCH %s)"
                )
            )
            params.append(words)
        return " UNION ".join(parts), params


class PostgresFullText:
    """pg_trgm GIN indexes on the generated columns of calls, and recordings_transcript_search: a tsvector per
    transcript with its call's id, kept by triggers (migration 0003). PostgreSQL plans from its statistics, so
    conditions go to it as subqueries; its own estimates of the matches choose between driving and row checks."""

    WORDS = "s.document @@ phraseto_tsquery('english'::regconfig, %s)"

    def _call_predicate(self, c: TextCondition, table: str) -> tuple[str, list]:
        if c.kind == "number":
            return f"{table}.number_digits LIKE %s", [_like(c.text)]
        if c.kind == "phone":
            return f"({table}.number_digits LIKE %s OR {table}.search_text LIKE %s)", [_like(c.text), _like(c.raw)]
        return f"({table}.search_text LIKE %s OR {table}.number_digits LIKE %s)", [_like(c.text)] * 2

    def _estimate(self, sql: str, params: list) -> int:
        """The planner's estimate of the rows `sql` returns: from the statistics, without running it."""
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return max(1, round(plan[0]["Plan"]["Plan Rows"]))

    def _calls(self) -> int:
        """The planner's idea of how many calls there are (pg_class.reltuples, kept by ANALYZE)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'recordings_call'::regclass")
            return max(0, round(cursor.fetchone()[0]))

    def matches(self, c: TextCondition) -> Matches:
        calls = words = 0
        if c.substring:
            predicate, params = self._call_predicate(c, "c")
            calls = self._estimate(f"SELECT 1 FROM recordings_call c WHERE {predicate}", params)  # noqa: S608
            total = self._calls() if c.text.isdigit() else 0
            if c.text.isdigit() and calls < COMMON_SHARE * total:
                # For a run of digits below what the statistics' sample can see, the planner's figure is noise
                # (200 or 10,000 for the same run): a number has about ten places where a run can start, and
                # each is one of 10**len(run), so expect two numbers x ten places / 10**len of the calls.
                calls = max(1, round(total * 20 / 10 ** len(c.text)))
        if c.words:
            sql = f"SELECT 1 FROM recordings_transcript_search s WHERE {self.WORDS}"  # noqa: S608
            # A phrase matches at most as often as its rarest word (the planner multiplies their frequencies).
            words = min(self._estimate(sql, [word]) for word in c.text.split())
        return Matches(calls, words)

    def driving(self, c: TextCondition, m: Matches) -> tuple[str, list]:
        parts, params = [], []
        if m.calls:
            predicate, predicate_params = self._call_predicate(c, "c")
            parts.append(f"SELECT c.id FROM recordings_call c WHERE {predicate}")  # noqa: S608
            params += predicate_params
        if m.words:
            parts.append(f"SELECT s.call_id FROM recordings_transcript_search s WHERE {self.WORDS}")  # noqa: S608
            params.append(c.text)
        return " UNION ".join(parts), params

    def listed(self, c: TextCondition, m: Matches) -> tuple[str, list]:
        """The call is one of the few found, computed first (ARRAY() is an InitPlan, run once): planned as a
        semi-join instead, PostgreSQL would trust its estimate and might walk the whole table in sort order."""
        sql, params = self.driving(c, m)
        return f"recordings_call.id = ANY(ARRAY({sql}))", params

    def sources(self, c: TextCondition, m: Matches) -> list[tuple[str, list]]:
        """The condition as plain predicates, one per index that matched: their OR is the condition."""
        sources = []
        if m.calls:
            sources.append(self._call_predicate(c, "recordings_call"))
        if m.words:
            sql = f"recordings_call.id IN (SELECT s.call_id FROM recordings_transcript_search s WHERE {self.WORDS})"  # noqa: S608
            sources.append((sql, [c.text]))
        return sources

    def sample(self, c: TextCondition, m: Matches, *, newest: bool) -> tuple[str, list]:
        """The call is one of PROBE_SAMPLE matches of each index (in the order the index finds them: no sort of
        every match), computed first (ARRAY() is an InitPlan), so that each sampled call is one look-up."""
        parts, params = [], []
        if m.calls:
            predicate, predicate_params = self._call_predicate(c, "c")
            parts.append(f"(SELECT c.id FROM recordings_call c WHERE {predicate} LIMIT %s)")  # noqa: S608
            params += [*predicate_params, PROBE_SAMPLE]
        if m.words:
            parts.append(f"(SELECT s.call_id FROM recordings_transcript_search s WHERE {self.WORDS} LIMIT %s)")  # noqa: S608
            params += [c.text, PROBE_SAMPLE]
        return f"recordings_call.id = ANY(ARRAY({' UNION ALL '.join(parts)}))", params

    def row_check(self, c: TextCondition, m: Matches) -> tuple[str, list]:
        checks, params = [], []
        if m.calls:
            predicate, predicate_params = self._call_predicate(c, "recordings_call")
            checks.append(predicate)
            params += predicate_params
        if m.words:
            # OFFSET 0 keeps it a look-up per row: PostgreSQL would otherwise hash every match first.
            checks.append(
                "EXISTS (SELECT 1 FROM recordings_transcript_search s"  # noqa: S608
                f" WHERE s.call_id = recordings_call.id AND {self.WORDS} OFFSET 0)"
            )
            params.append(c.text)
        return "(" + " OR ".join(checks) + ")", params


def _fulltext() -> SqliteFullText | PostgresFullText:
    if connection.vendor == "sqlite":
        return SqliteFullText()
    if connection.vendor == "postgresql":
        return PostgresFullText()
    raise NotImplementedError(f"Call search supports SQLite and PostgreSQL, not {connection.vendor}.")
