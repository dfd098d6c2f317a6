"""Call search, SQLite only: an index of the filter columns keyed by call id (docs/search.md, "Plans").

When a common free-text term is excluded by the other filters, the full-text index drives the query: tens of
thousands of matching ids, each checked against the filters. Read from the calls table, every check reads a whole
(fat) call row; this index holds just the filtered columns, so `id IN (…) AND provider = …` is answered from it
(`INDEXED BY`, as SQLite keeps no statistics). Agent and campaign are not in it: SQLite 3.40 does not read an
expression (`lower(agent)`) from an index to cover a query, so those filters still read the row. Keyed by id, new
calls are appended at its end. PostgreSQL ANDs its bitmaps instead and gets nothing: no index there.

A plain CREATE INDEX, not in the model's Meta.indexes: Django remaking recordings_call on SQLite would drop it, so
a later migration that remakes that table must run `create_index` again (as it must `install_fulltext` of 0003).
"""

from django.db import migrations

INDEX = "call_filters_by_id_idx"
CREATE = (
    f"CREATE INDEX IF NOT EXISTS {INDEX} ON recordings_call"
    " (id, provider, account_id, direction, has_transcript, started_at, duration)"
)


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(CREATE, params=None)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("recordings", "0004_auditevent_locked_out"),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
