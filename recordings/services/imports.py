"""Import a provider's CSV report (Kaleyra's recording report, Ameyo's call report) in constant memory."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ..models import AuditEvent, ProviderAccount
from ..providers import NotSupportedReport, adapter_for
from .audit import audit_record
from .ingest import IngestCounts, Upserter

# Row errors kept for the report; beyond this only their number is counted (constant memory).
MAX_REPORTED_ERRORS = 500


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0
    counts: IngestCounts = field(default_factory=IngestCounts)

    def summary(self) -> str:
        c = self.counts
        return (
            f"{self.rows} row(s): {c.calls_created} call(s) added, {c.calls_updated} updated, "
            f"{c.recordings_created} recording(s) added, {c.recordings_updated} updated; "
            f"{self.error_count} row(s) with errors."
        )


class ReportError(Exception):
    """The file as a whole cannot be imported (no header, missing columns)."""


def _decoded_lines(stream: BinaryIO, bad_lines: set[int]) -> Iterator[str]:
    """Decode line by line so one badly encoded row is reported instead of stopping the import."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            yield raw.decode("utf-8", "replace")


def report_import(
    *,
    account: ProviderAccount,
    stream: BinaryIO,
    actor=None,
    filename: str = "",
    on_batch: Callable[[IngestCounts], None] | None = None,
) -> ImportResult:
    """Import every good row; report every bad row with its line number and reason. Re-importing changes nothing."""
    adapter = adapter_for(account)
    columns = getattr(adapter, "report_columns", None)
    if not adapter.can_import_report or columns is None:
        raise NotSupportedReport(f"{adapter.label} calls are synced from its API, not imported from a report.")
    bad_lines: set[int] = set()
    reader = csv.reader(_decoded_lines(stream, bad_lines))
    try:
        headers = next(reader)
    except StopIteration:
        raise ReportError("The file is empty.") from None
    except csv.Error as exc:
        raise ReportError(f"The header line is not valid CSV: {exc}") from None
    try:
        mapping = columns.resolve(headers)
    except ValueError as exc:
        raise ReportError(f"This does not look like a {adapter.label} report: {exc}.") from None
    index = {name: headers.index(header) for name, header in mapping.items()}

    result = ImportResult()
    with Upserter(account, on_batch=on_batch) as upserter:
        for line, values in _rows(reader):
            if values is None:
                _add_error(result, line, "not valid CSV")
                continue
            if not any(v.strip() for v in values):
                continue
            result.rows += 1
            if line in bad_lines:
                _add_error(result, line, "not valid UTF-8 text")
                continue
            row = {name: values[i] if i < len(values) else "" for name, i in index.items()}
            try:
                remote = adapter.parse_report_row(row)
            except (ValueError, KeyError) as exc:
                _add_error(result, line, str(exc))
                continue
            upserter.add(remote)
            result.imported += 1
    result.counts = upserter.counts
    audit_record(
        action=AuditEvent.Action.IMPORT,
        actor=actor,
        target=account,
        details={
            **upserter.counts.as_dict(),
            "rows": result.rows,
            "errors": result.error_count,
            "file": filename[:100],
        },
    )
    return result


def _rows(reader) -> Iterable[tuple[int, list[str] | None]]:
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield reader.line_num, None
            continue
        yield reader.line_num, values


def _add_error(result: ImportResult, line: int, reason: str) -> None:
    result.error_count += 1
    if len(result.errors) < MAX_REPORTED_ERRORS:
        result.errors.append((line, reason))
