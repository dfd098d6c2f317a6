"""Re-encrypt every stored credential with the first key of FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from recordings.fields import DecryptionError, rotate_token
from recordings.models import ProviderAccount


class Command(BaseCommand):
    help = (
        "Re-encrypt every account's credentials with the first key in FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then drop the old keys."
    )

    def handle(self, *args, **options) -> None:
        table = connection.ops.quote_name(ProviderAccount._meta.db_table)
        column = connection.ops.quote_name(ProviderAccount._meta.get_field("credentials").column)
        rotated = 0
        with transaction.atomic():
            # Work on the stored tokens themselves: no plaintext is ever held longer than one rotate call.
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
                rows = cursor.fetchall()
            for pk, token in rows:
                try:
                    new_token = rotate_token(token)
                except DecryptionError as exc:
                    raise CommandError(
                        f"Account {pk}: credentials cannot be decrypted with any configured key; nothing was changed."
                    ) from exc
                with connection.cursor() as cursor:
                    cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [new_token, pk])  # noqa: S608
                rotated += 1
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted the credentials of {rotated} account(s) with the first key.")
        )
