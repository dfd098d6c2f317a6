"""Constraints of the data model."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from recordings.models import AuditEvent, Call, ProviderAccount, Recording


def make_call(account, remote_id="c-1"):
    return Call.objects.create(
        account=account, provider=account.provider, remote_id=remote_id, started_at=dt.datetime.now(dt.UTC)
    )


def test_call_remote_id_is_unique_per_account(account):
    make_call(account, "c-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_call(account, "c-1")


def test_same_remote_id_is_fine_in_another_account(account):
    other = ProviderAccount.objects.create(name="Bandwidth second", provider="bandwidth", credentials={})
    make_call(account, "c-1")
    make_call(other, "c-1")
    assert Call.objects.filter(remote_id="c-1").count() == 2


def test_recording_remote_id_is_unique_per_account(call):
    Recording.objects.create(call=call, account=call.account, remote_id="r-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Recording.objects.create(call=call, account=call.account, remote_id="r-1")


def test_account_with_calls_cannot_be_deleted(call):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        call.account.delete()


def test_audit_events_are_append_only(db):
    event = AuditEvent.objects.create(action=AuditEvent.Action.SYNC)
    event.details = {"changed": True}
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(action="play")
    assert AuditEvent.objects.get(pk=event.pk).details == {}
