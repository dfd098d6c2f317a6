"""CSV cells that a spreadsheet cannot run: a value starting with =, +, -, @, tab or carriage return gets a leading
apostrophe (OWASP's advice for CSV injection)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """The text of one CSV cell, never read as a formula. None is an empty cell."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeWriter:
    """A `csv.writer` whose every cell goes through safe_cell: `SafeWriter(file).writerow([...])`."""

    def __init__(self, file, **fmtparams) -> None:
        self._writer = csv.writer(file, **fmtparams)

    def writerow(self, row: Iterable) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable]) -> None:
        for row in rows:
            self.writerow(row)


class _Echo:
    """A file that hands back what is written: csv.writer then returns each line."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable], *, bom: bool = True) -> Iterator[str]:
    """Each row as one line of safe CSV, lazily: the body of a StreamingHttpResponse. A UTF-8 BOM first (`bom`)
    makes spreadsheet programs read the file as UTF-8."""
    writer = SafeWriter(_Echo())
    if bom:
        yield "\ufeff"
    for row in rows:
        yield writer.writerow(row)
