"""Call search: generated search columns, case-insensitive agent/campaign indexes, full-text indexes.

SQLite: two FTS5 external-content tables kept in sync by triggers -- `recordings_call_fts` (trigram tokenizer:
substring MATCH of 3+ characters over the digits of both numbers and over agent, campaign, remote id) and
`recordings_transcript_fts` (words, Porter stemming). PostgreSQL: pg_trgm GIN indexes on the generated columns, and
`recordings_transcript_search` (a trigger-kept tsvector per transcript with its call's id, GIN-indexed).
See docs/search.md.

Note for later migrations: on SQLite, Django remakes a table (create new, copy, drop old) for many schema changes,
and dropping recordings_call or recordings_transcript drops their triggers. A migration that remakes either table
must run `install_fulltext` below again; its statements are idempotent (tests/search fails loudly if it does not).
"""

from django.db import migrations, models
import django.db.models.functions.text

SQLITE_INSTALL = [
    """CREATE VIRTUAL TABLE IF NOT EXISTS recordings_call_fts USING fts5(
        number_digits, search_text, content='recordings_call', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER IF NOT EXISTS recordings_call_fts_insert AFTER INSERT ON recordings_call BEGIN
        INSERT INTO recordings_call_fts(rowid, number_digits, search_text)
        VALUES (new.id, new.number_digits, new.search_text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS recordings_call_fts_delete AFTER DELETE ON recordings_call BEGIN
        INSERT INTO recordings_call_fts(recordings_call_fts, rowid, number_digits, search_text)
        VALUES ('delete', old.id, old.number_digits, old.search_text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS recordings_call_fts_update
    AFTER UPDATE OF from_number, to_number, agent, campaign, remote_id ON recordings_call
    WHEN old.number_digits IS NOT new.number_digits OR old.search_text IS NOT new.search_text BEGIN
        INSERT INTO recordings_call_fts(recordings_call_fts, rowid, number_digits, search_text)
        VALUES ('delete', old.id, old.number_digits, old.search_text);
        INSERT INTO recordings_call_fts(rowid, number_digits, search_text)
        VALUES (new.id, new.number_digits, new.search_text);
    END""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS recordings_transcript_fts USING fts5(
        text, content='recordings_transcript', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER IF NOT EXISTS recordings_transcript_fts_insert AFTER INSERT ON recordings_transcript BEGIN
        INSERT INTO recordings_transcript_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS recordings_transcript_fts_delete AFTER DELETE ON recordings_transcript BEGIN
        INSERT INTO recordings_transcript_fts(recordings_transcript_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS recordings_transcript_fts_update AFTER UPDATE OF text ON recordings_transcript
    WHEN old.text IS NOT new.text BEGIN
        INSERT INTO recordings_transcript_fts(recordings_transcript_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO recordings_transcript_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    # Index rows that exist already (a database migrated with calls in it).
    "INSERT INTO recordings_call_fts(recordings_call_fts) VALUES ('rebuild')",
    "INSERT INTO recordings_transcript_fts(recordings_transcript_fts) VALUES ('rebuild')",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS recordings_call_fts_insert",
    "DROP TRIGGER IF EXISTS recordings_call_fts_delete",
    "DROP TRIGGER IF EXISTS recordings_call_fts_update",
    "DROP TRIGGER IF EXISTS recordings_transcript_fts_insert",
    "DROP TRIGGER IF EXISTS recordings_transcript_fts_delete",
    "DROP TRIGGER IF EXISTS recordings_transcript_fts_update",
    "DROP TABLE IF EXISTS recordings_call_fts",
    "DROP TABLE IF EXISTS recordings_transcript_fts",
]
# pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it, no superuser needed.
# recordings_transcript_search holds each transcript's tsvector with its call's id, so that a word search gives
# call ids straight from a GIN index and a call is checked with one index look-up (an expression index on the
# transcript text would have to recompute to_tsvector for every row a phrase query rechecks).
POSTGRESQL_INSTALL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS call_number_digits_trgm ON recordings_call USING gin (number_digits gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS call_search_text_trgm ON recordings_call USING gin (search_text gin_trgm_ops)",
    """CREATE TABLE IF NOT EXISTS recordings_transcript_search (
        transcript_id bigint PRIMARY KEY,
        call_id bigint NOT NULL,
        document tsvector NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS transcript_search_document ON recordings_transcript_search USING gin (document)",
    "CREATE INDEX IF NOT EXISTS transcript_search_call ON recordings_transcript_search (call_id)",
    """CREATE OR REPLACE FUNCTION recordings_transcript_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM recordings_transcript_search WHERE transcript_id = OLD.id;
            RETURN OLD;
        END IF;
        INSERT INTO recordings_transcript_search (transcript_id, call_id, document)
        SELECT NEW.id, r.call_id, to_tsvector('english'::regconfig, NEW.text)
        FROM recordings_recording r WHERE r.id = NEW.recording_id
        ON CONFLICT (transcript_id) DO UPDATE SET call_id = EXCLUDED.call_id, document = EXCLUDED.document;
        RETURN NEW;
    END $$""",
    """CREATE OR REPLACE FUNCTION recordings_transcript_search_move() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE recordings_transcript_search s SET call_id = NEW.call_id
        FROM recordings_transcript t WHERE t.recording_id = NEW.id AND s.transcript_id = t.id;
        RETURN NEW;
    END $$""",
    """CREATE OR REPLACE FUNCTION recordings_transcript_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE recordings_transcript_search;
        RETURN NULL;
    END $$""",
    "DROP TRIGGER IF EXISTS recordings_transcript_search_sync ON recordings_transcript",
    """CREATE TRIGGER recordings_transcript_search_sync
        AFTER INSERT OR UPDATE OF text, recording_id OR DELETE ON recordings_transcript
        FOR EACH ROW EXECUTE FUNCTION recordings_transcript_search_sync()""",
    "DROP TRIGGER IF EXISTS recordings_transcript_search_move ON recordings_recording",
    """CREATE TRIGGER recordings_transcript_search_move AFTER UPDATE OF call_id ON recordings_recording
        FOR EACH ROW WHEN (OLD.call_id IS DISTINCT FROM NEW.call_id)
        EXECUTE FUNCTION recordings_transcript_search_move()""",
    "DROP TRIGGER IF EXISTS recordings_transcript_search_truncate ON recordings_transcript",
    """CREATE TRIGGER recordings_transcript_search_truncate AFTER TRUNCATE ON recordings_transcript
        FOR EACH STATEMENT EXECUTE FUNCTION recordings_transcript_search_truncate()""",
    # Index rows that exist already (a database migrated with transcripts in it).
    """INSERT INTO recordings_transcript_search (transcript_id, call_id, document)
        SELECT t.id, r.call_id, to_tsvector('english'::regconfig, t.text)
        FROM recordings_transcript t JOIN recordings_recording r ON r.id = t.recording_id
        ON CONFLICT (transcript_id) DO NOTHING""",
]
POSTGRESQL_UNINSTALL = [
    "DROP TRIGGER IF EXISTS recordings_transcript_search_sync ON recordings_transcript",
    "DROP TRIGGER IF EXISTS recordings_transcript_search_move ON recordings_recording",
    "DROP TRIGGER IF EXISTS recordings_transcript_search_truncate ON recordings_transcript",
    "DROP FUNCTION IF EXISTS recordings_transcript_search_sync()",
    "DROP FUNCTION IF EXISTS recordings_transcript_search_move()",
    "DROP FUNCTION IF EXISTS recordings_transcript_search_truncate()",
    "DROP TABLE IF EXISTS recordings_transcript_search",
    "DROP INDEX IF EXISTS call_number_digits_trgm",
    "DROP INDEX IF EXISTS call_search_text_trgm",
]


def _run(schema_editor, statements_by_vendor):
    for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


def install_fulltext(apps, schema_editor):
    _run(schema_editor, {"sqlite": SQLITE_INSTALL, "postgresql": POSTGRESQL_INSTALL})


def uninstall_fulltext(apps, schema_editor):
    _run(schema_editor, {"sqlite": SQLITE_UNINSTALL, "postgresql": POSTGRESQL_UNINSTALL})



class Migration(migrations.Migration):

    dependencies = [
        ('recordings', '0002_roles'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='call',
            name='call_agent_started_idx',
        ),
        migrations.RemoveIndex(
            model_name='call',
            name='call_campaign_started_idx',
        ),
        migrations.AddField(
            model_name='call',
            name='number_digits',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Concat(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(models.F('from_number'), models.Value('+'), models.Value('')), models.Value(' '), models.Value('')), models.Value('-'), models.Value('')), models.Value('('), models.Value('')), models.Value(')'), models.Value('')), models.Value('.'), models.Value('')), models.Value(' '), django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(django.db.models.functions.text.Replace(models.F('to_number'), models.Value('+'), models.Value('')), models.Value(' '), models.Value('')), models.Value('-'), models.Value('')), models.Value('('), models.Value('')), models.Value(')'), models.Value('')), models.Value('.'), models.Value(''))), output_field=models.CharField(max_length=81)),
        ),
        migrations.AddField(
            model_name='call',
            name='search_text',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Lower(django.db.models.functions.text.Concat(models.F('agent'), models.Value(' '), models.F('campaign'), models.Value(' '), models.F('remote_id'))), output_field=models.TextField()),
        ),
        migrations.AddIndex(
            model_name='call',
            index=models.Index(django.db.models.functions.text.Lower('agent'), models.OrderBy(models.F('started_at'), descending=True), models.OrderBy(models.F('id'), descending=True), name='call_agent_ci_started_idx'),
        ),
        migrations.AddIndex(
            model_name='call',
            index=models.Index(django.db.models.functions.text.Lower('campaign'), models.OrderBy(models.F('started_at'), descending=True), models.OrderBy(models.F('id'), descending=True), name='call_campaign_ci_started_idx'),
        ),
        migrations.RunPython(install_fulltext, uninstall_fulltext),
    ]
