"""An encrypted JSON field: values are Fernet tokens at rest, keyed by FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty; at least one Fernet key is required.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes). "
            "Generate one with: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc


def get_fernet() -> MultiFernet:
    """The MultiFernet for the current settings: the first key encrypts, every key decrypts."""
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_value(value: Any) -> str:
    return get_fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_value(token: str) -> Any:
    try:
        plaintext = get_fernet().decrypt(token.encode())
    except InvalidToken as exc:
        # Never hand back the ciphertext as if it were the value: callers would send it as a password.
        raise DecryptionError("Stored credentials cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS.") from exc
    return json.loads(plaintext)


def rotate_token(token: str) -> str:
    """Re-encrypt a stored token with the first key (MultiFernet.rotate keeps the original timestamp)."""
    try:
        return get_fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("A stored value cannot be decrypted with any configured key.") from exc


class EncryptedJSONField(models.TextField):
    """A JSON value stored as a Fernet token; reading it back needs one of FIELD_ENCRYPTION_KEYS."""

    description = "JSON encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None if value is None else {}
        return decrypt_value(value)

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt_value(value)

    def value_to_string(self, obj: models.Model) -> str:
        # dumpdata must never print plaintext credentials.
        return "<encrypted>"
