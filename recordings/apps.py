"""App configuration for the recordings app."""

from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "Recordings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import auth, signals  # noqa: F401 - connect the audit and permission-cache receivers
