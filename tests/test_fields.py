"""Credentials are encrypted at rest; rotation and wrong keys behave."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from recordings.fields import DecryptionError, get_fernet
from recordings.models import ProviderAccount

SECRET = "s3cret-Pa55word"


def raw_credentials(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM recordings_provideraccount WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_it_stores_no_plaintext(account):
    raw = raw_credentials(account.pk)
    assert SECRET not in raw
    assert "api-user" not in raw
    assert "password" not in raw
    # It is a Fernet token that the configured key opens.
    assert get_fernet().decrypt(raw.encode())


def test_it_reads_back_the_value(account):
    fresh = ProviderAccount.objects.get(pk=account.pk)
    assert fresh.credentials == {"username": "api-user", "password": SECRET}


def test_it_raises_with_a_wrong_key(account, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError) as excinfo:
        ProviderAccount.objects.get(pk=account.pk)
    # The error never carries the ciphertext or the value.
    assert raw_credentials(account.pk) not in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_it_rotates_to_the_first_key(account, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    before = raw_credentials(account.pk)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))
    after = raw_credentials(account.pk)
    assert after != before
    assert Fernet(new_key.encode()).decrypt(after.encode())

    # The old key can now be dropped.
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert ProviderAccount.objects.get(pk=account.pk).credentials["password"] == SECRET


def test_rotation_refuses_rows_it_cannot_read_and_changes_nothing(account, settings):
    before = raw_credentials(account.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_encryption_keys")
    assert raw_credentials(account.pk) == before


def test_dumpdata_never_prints_credentials(account, capsys):
    call_command("dumpdata", "recordings.provideraccount")
    out = capsys.readouterr().out
    assert SECRET not in out
    assert raw_credentials(account.pk) not in out
