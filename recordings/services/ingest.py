"""Batched upserts of provider calls and recordings: new rows inserted, changed rows updated, others untouched.

A sync stores thousands of rows a second (budget: >= 2,000 recordings/s, see docs/benchmarks.md), so rows are
written with plain SQL rather than model instances: per batch, one SELECT finds the rows that exist (their columns as
the database returns them), new rows go in with multi-row INSERTs, and only rows whose values differ are UPDATEd.
Generated columns and the full-text triggers of migration 0003 are the database's work, as with the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from ..models import Call, ProviderAccount, Recording
from ..providers import RemoteCall, RemoteRecording

BATCH_SIZE = 1000
# Rows per INSERT statement: SQLite's variable limit (32766 since 3.32) divided by the columns bounds it too.
ROWS_PER_STATEMENT = 500

CALL_FIELDS = [
    "direction", "from_number", "to_number", "agent", "campaign", "disposition",
    "started_at", "ended_at", "duration", "raw",
]  # fmt: skip
RECORDING_FIELDS = [
    "call", "status", "content_type", "format", "duration", "size_bytes", "channels",
    "started_at", "locator", "raw", "gone_upstream_at",
]  # fmt: skip
# Statuses we set ourselves after acting at the provider; a listing never turns them back.
LOCAL_FINAL = {Recording.Status.DELETED, Recording.Status.MEDIA_DELETED}


@dataclass
class IngestCounts:
    calls_created: int = 0
    calls_updated: int = 0
    recordings_created: int = 0
    recordings_updated: int = 0
    unchanged: int = 0
    seen_recordings: int = 0
    newest_started_at: datetime | None = None
    seen_recording_ids: set[str] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "calls_created": self.calls_created,
            "calls_updated": self.calls_updated,
            "recordings_created": self.recordings_created,
            "recordings_updated": self.recordings_updated,
            "unchanged": self.unchanged,
            "recordings_seen": self.seen_recordings,
        }


class Upserter:
    """Collects RemoteCalls and writes them in batches. Use as a context manager or call flush()."""

    def __init__(
        self,
        account: ProviderAccount,
        *,
        track_seen: bool = False,
        on_batch: Callable[[IngestCounts], None] | None = None,
    ) -> None:
        self.account = account
        self.track_seen = track_seen
        self.on_batch = on_batch
        self.counts = IngestCounts()
        self._pending: dict[str, RemoteCall] = {}

    def __enter__(self) -> Upserter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()

    def add(self, remote: RemoteCall) -> None:
        existing = self._pending.get(remote.remote_id)
        if existing is None:
            self._pending[remote.remote_id] = remote
        else:
            # Bandwidth lists a call once per recording (Truto's may come in parts): merge them.
            known = {r.remote_id for r in existing.recordings}
            existing.recordings.extend(r for r in remote.recordings if r.remote_id not in known)
            existing.started_at, existing.ended_at, existing.duration = _span(
                existing.started_at, existing.ended_at, existing.duration, remote
            )
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = list(self._pending.values()), {}
        with transaction.atomic():
            call_pks = self._write_calls(batch)
            self._write_recordings(batch, call_pks)
        newest = max(remote.started_at for remote in batch)
        if self.counts.newest_started_at is None or newest > self.counts.newest_started_at:
            self.counts.newest_started_at = newest
        if self.on_batch:
            self.on_batch(self.counts)

    @cached_property
    def _calls(self) -> _Table:
        return _table(Call, CALL_FIELDS, account=self.account, constants={"provider": self.account.provider})

    @cached_property
    def _recordings(self) -> _Table:
        return _table(Recording, RECORDING_FIELDS, account=self.account)

    def _write_calls(self, batch: list[RemoteCall]) -> dict[str, int]:
        """Insert new calls, update changed ones; returns the primary key of every call of the batch."""
        table = self._calls
        existing = table.existing([remote.remote_id for remote in batch])
        started, ended, duration = (table.index[name] + 1 for name in ("started_at", "ended_at", "duration"))
        from_db = table.from_db_datetime
        new, changed = [], []
        pks: dict[str, int] = {}
        for remote in batch:
            row = existing.get(remote.remote_id)
            # The same rule on insert and on update, so that a second run finds nothing to change.
            if row is None:
                span = _span(remote.started_at, remote.ended_at, remote.duration, remote)
            else:
                span = _span(from_db(row[started]), from_db(row[ended]), row[duration], remote)
            values = table.prepare([
                remote.direction, remote.from_number, remote.to_number, remote.agent, remote.campaign,
                remote.disposition, *span, remote.raw,
            ])  # fmt: skip
            if row is None:
                new.append((remote.remote_id, values))
                continue
            pks[remote.remote_id] = row[0]
            if table.differs(row, values):
                changed.append((row[0], values))
            else:
                self.counts.unchanged += 1
        pks.update(table.insert(new))
        table.update(changed)
        self.counts.calls_created += len(new)
        self.counts.calls_updated += len(changed)
        return pks

    def _write_recordings(self, batch: list[RemoteCall], call_pks: dict[str, int]) -> None:
        table = self._recordings
        remotes: list[tuple[RemoteRecording, int]] = [
            (rec, call_pks[remote.remote_id]) for remote in batch for rec in remote.recordings
        ]
        existing = table.existing([rec.remote_id for rec, _ in remotes])
        status = table.index["status"]
        new, changed = [], []
        self.counts.seen_recordings += len(remotes)
        if self.track_seen:
            self.counts.seen_recording_ids.update(rec.remote_id for rec, _ in remotes)
        for rec, call_pk in remotes:
            values = table.prepare([
                call_pk, rec.status, rec.content_type, rec.format, rec.duration, rec.size_bytes, rec.channels,
                rec.started_at, rec.locator, rec.raw, None,
            ])  # fmt: skip
            row = existing.get(rec.remote_id)
            if row is None:
                new.append((rec.remote_id, values))
                continue
            if row[status + 1] in LOCAL_FINAL and rec.status not in LOCAL_FINAL:
                values[status] = row[status + 1]
            if table.differs(row, values):
                changed.append((row[0], values))
            else:
                self.counts.unchanged += 1
        table.insert(new, returning=False)
        table.update(changed)
        self.counts.recordings_created += len(new)
        self.counts.recordings_updated += len(changed)


def _span(started: datetime, ended: datetime | None, duration: float | None, remote: RemoteCall) -> tuple:
    """A call seen through several recordings (in different batches) spans all of them."""
    started = min(started, remote.started_at)
    ended = max((t for t in (ended, remote.ended_at) if t is not None), default=None)
    durations = [d for d in (duration, remote.duration) if d is not None]
    if ended is not None and started is not None:
        durations.append((ended - started).total_seconds())
    return started, ended, max(durations) if durations else None


class _Table:
    """Plain-SQL writes of one model's rows for one account: `fields` are compared and written, `remote_id` keys.

    Rows go through `prepare` (the conversions Django makes on save; datetimes in the form the backend stores and
    returns), are compared with `differs` to the rows `existing` read, and are written by `insert` and `update`.
    Columns the sync does not set get their model default on insert. Table and column names come from the model
    (quoted); values are always parameters. This class writes with multi-row INSERTs (SQLite, any backend);
    PostgreSQL has its own below.
    """

    json_read_as_text = True  # `existing` gives JSON columns as the database's text

    def __init__(
        self, model: type[models.Model], fields: Sequence[str], *, account: ProviderAccount, constants=None
    ) -> None:
        meta = model._meta
        qn = self.qn = connection.ops.quote_name
        self.account_pk = account.pk
        self.table = qn(meta.db_table)
        self.fields = [meta.get_field(name) for name in fields]
        self.index = {name: i for i, name in enumerate(fields)}
        self.timezone = connection.timezone
        self.json = [(i, f.encoder) for i, f in enumerate(self.fields) if isinstance(f, models.JSONField)]
        self.json_columns = {i for i, _ in self.json}
        self.datetimes = [i for i, f in enumerate(self.fields) if isinstance(f, models.DateTimeField)]
        # The Python type a column's value takes on save (FloatField: float(value)...), applied where it differs.
        self.coerce = [(i, kind, f.get_prep_value) for i, f in enumerate(self.fields) if (kind := _python_type(f))]
        # Everything else an INSERT needs: the account, the constants, the defaults of the columns not written.
        fixed = {"account": account.pk, **(constants or {})}
        written = {"id", "remote_id", "created_at", "updated_at", *fixed, *fields}
        for f in meta.concrete_fields:
            if f.name not in written and not f.generated:
                fixed[f.name] = f.get_db_prep_save(f.get_default(), connection)
        self.fixed = [(meta.get_field(name), value) for name, value in fixed.items()]
        self.columns = [qn(f.column) for f in self.fields]
        self.insert_columns = [
            qn("remote_id"), *self.columns, *(qn(f.column) for f, _ in self.fixed), qn("created_at"), qn("updated_at")
        ]  # fmt: skip
        self.select = (
            f"SELECT {qn('id')}, {', '.join(self.columns)}, {qn('remote_id')} FROM {self.table} "  # noqa: S608
            f"WHERE {qn('account_id')} = %s AND {qn('remote_id')} "
        )
        self.returning = f" RETURNING {qn('id')}, {qn('remote_id')}"
        self.model = model

    # Values ------------------------------------------------------------------------------------------------

    def to_db_datetime(self, value: datetime | None):
        """An aware datetime, as the backend returns it (overridden for SQLite)."""
        if value is not None and value.tzinfo is None:
            value = timezone.make_aware(value)  # naive is the default zone, as Django takes it (with a warning)
        return value

    def from_db_datetime(self, value):
        return value

    def prepare(self, values: list) -> list:
        """The values of `fields` (Python values) as they are compared and written; changes the list in place."""
        for i in self.datetimes:
            values[i] = self.to_db_datetime(values[i])
        for i, kind, convert in self.coerce:
            value = values[i]
            if value is not None and type(value) is not kind:
                values[i] = convert(value)
        return values

    def differs(self, row: tuple, values: list) -> bool:
        """Whether prepared values differ from a stored row (pk first): the comparison of Python values Django makes."""
        for i, value in enumerate(values):
            stored = row[i + 1]
            if stored == value:
                continue
            if isinstance(stored, str) and value is not None:
                # JSON read as text (PostgreSQL's jsonb spells it its own way): compare what it means.
                if i in self.json_columns and self.json_read_as_text and json.loads(stored) == value:
                    continue
                # SQLite's datetimes are text: another spelling of the same time is the same time.
                if i in self.datetimes and self.from_db_datetime(stored) == self.from_db_datetime(value):
                    continue
            return True
        return False

    def _json_to_text(self, values: list) -> list:
        for i, encoder in self.json:
            if values[i] is not None:
                values[i] = json.dumps(values[i], cls=encoder)  # as Django's adapt_json_value
        return values

    # Statements --------------------------------------------------------------------------------------------

    def existing(self, remote_ids: list[str]) -> dict[str, tuple]:
        """remote_id -> (pk, *the fields as stored) of this account's rows among `remote_ids`."""
        found: dict[str, tuple] = {}
        rows = min(ROWS_PER_STATEMENT * 8, _max_variables() - 1)
        with connection.cursor() as cursor:
            for chunk in _chunks(remote_ids, rows):
                cursor.execute(f"{self.select}IN ({', '.join(['%s'] * len(chunk))})", [self.account_pk, *chunk])
                for row in cursor.fetchall():
                    found[row[-1]] = row
        return found

    def insert(self, rows: list[tuple[str, list]], *, returning: bool = True) -> dict[str, int]:
        """INSERT (remote_id, prepared values) rows; returns remote_id -> pk when `returning`."""
        if not rows:
            return {}
        now = self.to_db_datetime(timezone.now())
        tail = [*(value for _, value in self.fixed), now, now]
        head = f"INSERT INTO {self.table} ({', '.join(self.insert_columns)}) VALUES "  # noqa: S608
        one = f"({', '.join(['%s'] * len(self.insert_columns))})"
        can_return = connection.features.can_return_rows_from_bulk_insert
        pks: dict[str, int] = {}
        with connection.cursor() as cursor:
            for chunk in _chunks(rows, min(ROWS_PER_STATEMENT, _max_variables() // len(self.insert_columns))):
                params: list[Any] = []
                for remote_id, values in chunk:
                    params.append(remote_id)
                    params.extend(self._json_to_text(values))
                    params.extend(tail)
                sql = head + ", ".join([one] * len(chunk))
                if returning and can_return:
                    cursor.execute(sql + self.returning, params)
                    pks.update((remote_id, pk) for pk, remote_id in cursor.fetchall())
                else:
                    cursor.execute(sql, params)
        if returning and not can_return:
            pks = {remote_id: row[0] for remote_id, row in self.existing([r for r, _ in rows]).items()}
        return pks

    def update(self, rows: list[tuple[int, list]]) -> None:
        """UPDATE (pk, prepared values) rows, and updated_at as auto_now would."""
        if not rows:
            return
        now = self.to_db_datetime(timezone.now())
        qn = self.qn
        sql = (
            f"UPDATE {self.table} SET {', '.join(f'{c} = %s' for c in self.columns)}, {qn('updated_at')} = %s "  # noqa: S608
            f"WHERE {qn('id')} = %s"
        )
        with connection.cursor() as cursor:  # only rows that changed: few, usually
            cursor.executemany(sql, [[*self._json_to_text(values), now, pk] for pk, values in rows])


class _SQLiteTable(_Table):
    """SQLite: a datetime is the text Django writes (its naive UTC time); rows are compared and written as that text.

    Statements here give at most one row: Python's sqlite3 lets go of the GIL for every row it steps through and
    must wait for it again while the prefetch thread parses (a convoy that made writing 2-3 times slower), so the
    rows read come as one JSON document and INSERTs return nothing.
    """

    json_read_as_text = False  # json() puts them in the document as JSON: they arrive parsed

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        qn = self.qn
        # quote() spells a REAL with the digits that read back as the same double (json_array would round it).
        read = [
            f"quote({qn(f.column)})" if isinstance(f, models.FloatField)
            else f"json({qn(f.column)})" if isinstance(f, models.JSONField)
            else qn(f.column)
            for f in self.fields
        ]  # fmt: skip
        where = f"FROM {self.table} WHERE {qn('account_id')} = %s AND {qn('remote_id')} IN "
        where += "(SELECT value FROM json_each(%s))"
        row = f"json_array({qn('id')}, {', '.join(read)}, {qn('remote_id')})"
        self.select = f"SELECT json_group_array({row}) {where}"
        self.select_pks = f"SELECT json_group_object({qn('remote_id')}, {qn('id')}) {where}"
        self.floats = [i for i, f in enumerate(self.fields) if isinstance(f, models.FloatField)]

    def to_db_datetime(self, value: datetime | None):
        """The text Django writes for a datetime on SQLite: str() of the naive time in the connection's zone (UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = timezone.make_aware(value)
        if value.tzinfo is not self.timezone:
            value = value.astimezone(self.timezone)
        if self.timezone is UTC:
            return value.isoformat(" ")[:-6]  # without its "+00:00": str() of the naive time, a copy sooner
        return str(value.replace(tzinfo=None))

    def from_db_datetime(self, value):
        return None if value is None else datetime.fromisoformat(value).replace(tzinfo=self.timezone)

    def existing(self, remote_ids: list[str]) -> dict[str, list]:
        with connection.cursor() as cursor:
            cursor.execute(self.select, [self.account_pk, json.dumps(remote_ids)])
            rows = json.loads(cursor.fetchone()[0])
        for row in rows:
            for i in self.floats:
                row[i + 1] = None if row[i + 1] == "NULL" else float(row[i + 1])
        return {row[-1]: row for row in rows}

    def insert(self, rows: list[tuple[str, list]], *, returning: bool = True) -> dict[str, int]:
        super().insert(rows, returning=False)
        if not (returning and rows):
            return {}
        with connection.cursor() as cursor:
            cursor.execute(self.select_pks, [self.account_pk, json.dumps([remote_id for remote_id, _ in rows])])
            return json.loads(cursor.fetchone()[0])


class _PostgreSQLTable(_Table):
    """Each statement takes its rows as one JSON document, expanded by json_to_recordset.

    psycopg (client-side binding, Django's default) parses a statement's placeholders in Python each time unless
    the text is short enough to cache: a multi-row VALUES statement cost more than the database's own work.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        qn = self.qn
        meta = self.model._meta
        # x(c0 type, c1 type, ...): c0 is remote_id (or id for updates), then the fields.
        types = [f"c{i + 1} {f.db_type(connection)}" for i, f in enumerate(self.fields)]
        values = ", ".join(f"x.c{i + 1}" for i in range(len(self.fields)))
        self.insert_sql = (
            f"INSERT INTO {self.table} ({', '.join(self.insert_columns)}) "  # noqa: S608
            f"SELECT x.c0, {values}, {', '.join(['%s'] * (len(self.fixed) + 2))} "
            f"FROM json_to_recordset(%s::json) AS x(c0 {meta.get_field('remote_id').db_type(connection)}, "
            f"{', '.join(types)})"
        )
        self.update_sql = (
            f"UPDATE {self.table} AS t SET {', '.join(f'{c} = x.c{i + 1}' for i, c in enumerate(self.columns))}, "  # noqa: S608
            f"{qn('updated_at')} = %s FROM json_to_recordset(%s::json) AS x(c0 bigint, {', '.join(types)}) "
            f"WHERE t.{qn('id')} = x.c0"
        )
        self.keys = ["c0", *(f"c{i + 1}" for i in range(len(self.fields)))]

    def existing(self, remote_ids: list[str]) -> dict[str, tuple]:
        # The ids as one JSON text (psycopg renders a list parameter item by item, in Python).
        sql = self.select + "IN (SELECT json_array_elements_text(%s::json))"
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.account_pk, json.dumps(remote_ids)])
            return {row[-1]: row for row in cursor.fetchall()}

    def _document(self, rows: list[tuple[Any, list]]) -> str:
        for _, values in rows:
            for i, encoder in self.json:
                if encoder is not None and values[i] is not None:
                    values[i] = json.loads(json.dumps(values[i], cls=encoder))
        keys = self.keys
        return json.dumps([dict(zip(keys, (key, *values), strict=True)) for key, values in rows], default=_isoformat)

    def insert(self, rows: list[tuple[str, list]], *, returning: bool = True) -> dict[str, int]:
        if not rows:
            return {}
        now = timezone.now()
        params = [*(value for _, value in self.fixed), now, now]
        pks: dict[str, int] = {}
        with connection.cursor() as cursor:
            for chunk in _chunks(rows, ROWS_PER_STATEMENT):
                if returning:
                    cursor.execute(self.insert_sql + self.returning, [*params, self._document(chunk)])
                    pks.update((remote_id, pk) for pk, remote_id in cursor.fetchall())
                else:
                    cursor.execute(self.insert_sql, [*params, self._document(chunk)])
        return pks

    def update(self, rows: list[tuple[int, list]]) -> None:
        if not rows:
            return
        with connection.cursor() as cursor:
            for chunk in _chunks(rows, ROWS_PER_STATEMENT):
                cursor.execute(self.update_sql, [timezone.now(), self._document(chunk)])


def _table(model: type[models.Model], fields: Sequence[str], **kwargs) -> _Table:
    cls = {"sqlite": _SQLiteTable, "postgresql": _PostgreSQLTable}.get(connection.vendor, _Table)
    return cls(model, fields, **kwargs)


def _isoformat(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _python_type(f: models.Field) -> type | None:
    if isinstance(f, models.ForeignKey):
        return None
    if isinstance(f, models.FloatField):
        return float
    if isinstance(f, models.BooleanField):
        return bool
    if isinstance(f, models.IntegerField):
        return int
    if isinstance(f, models.CharField | models.TextField):
        return str
    return None


def _max_variables() -> int:
    if connection.vendor != "sqlite":
        return 65535  # PostgreSQL's limit of parameters per statement
    import sqlite3

    connection.ensure_connection()
    return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
