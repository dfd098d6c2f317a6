"""Column mapping for provider CSV reports: any order, any header case, aliases, extra columns ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass


def normalize_header(name: str) -> str:
    """`  Recording ID ` -> `recording_id`; strips a BOM."""
    return re.sub(r"[^a-z0-9]+", "_", name.replace("\ufeff", "").strip().lower()).strip("_")


@dataclass(frozen=True)
class ReportColumns:
    """Our field -> the header spellings a report may use for it."""

    required: dict[str, tuple[str, ...]]
    optional: dict[str, tuple[str, ...]]

    def resolve(self, headers: list[str]) -> dict[str, str]:
        """Map our fields to the report's actual headers; raise ValueError naming missing required columns."""
        by_normal = {normalize_header(h): h for h in headers if h is not None}
        mapping: dict[str, str] = {}
        for field_name, aliases in {**self.required, **self.optional}.items():
            for alias in aliases:
                header = by_normal.get(normalize_header(alias))
                if header is not None:
                    mapping[field_name] = header
                    break
        missing = [f"{name} (e.g. {aliases[0]!r})" for name, aliases in self.required.items() if name not in mapping]
        if missing:
            raise ValueError(f"the report has no column for {', '.join(missing)}")
        return mapping

    def extract(self, row: dict[str, str]) -> dict[str, str]:
        """Our fields from one row (whose keys are already our field names, see imports)."""
        values = {k: (v or "").strip() for k, v in row.items() if k in self.required or k in self.optional}
        for name in self.required:
            if not values.get(name):
                raise ValueError(f"{name.replace('_', ' ')} is empty")
        return values

    @property
    def documented(self) -> list[tuple[str, bool, tuple[str, ...]]]:
        return [(n, True, a) for n, a in self.required.items()] + [(n, False, a) for n, a in self.optional.items()]
