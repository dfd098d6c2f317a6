"""Data of the portal: provider accounts, their calls and recordings, transcripts, jobs and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Lower, Replace
from django.utils import timezone

from .fields import EncryptedJSONField
from .providers import PROVIDER_CHOICES, get_provider
from .roles import PERMISSIONS


class ProviderAccount(models.Model):
    """One account at one provider, with its encrypted credentials and its last sync outcome."""

    class SyncStatus(models.TextChoices):
        NEVER = "never", "Never synced"
        OK = "ok", "OK"
        ERROR = "error", "Failed"
        RUNNING = "running", "Running"

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    base_url = models.URLField(
        max_length=300,
        blank=True,
        help_text="Leave blank for the provider's public API. The demo points this at the sandbox.",
    )
    credentials = EncryptedJSONField(default=dict, blank=True, editable=False)
    options = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField("active", default=True)

    sync_watermark = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Newest call start time seen; the next sync starts a little before it.",
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.NEVER)
    last_sync_error = models.TextField(blank=True)
    last_sync_counts = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()})"

    @property
    def adapter_class(self):
        return get_provider(self.provider)

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or self.adapter_class.default_base_url).rstrip("/")


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"
    UNKNOWN = "unknown", "Unknown"


def _digits(field: str):
    """The number without the characters people type around digits (stored numbers are E.164 already)."""
    expression = F(field)
    for char in "+ -().":
        expression = Replace(expression, Value(char), Value(""))
    return expression


class Call(models.Model):
    """A phone call at a provider; the thing supervisors search for."""

    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="calls")
    # Copied from the account so that the provider filter needs no join.
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    remote_id = models.CharField(max_length=200)
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.UNKNOWN)
    from_number = models.CharField(max_length=40, blank=True)
    to_number = models.CharField(max_length=40, blank=True)
    agent = models.CharField(max_length=200, blank=True)
    campaign = models.CharField(max_length=200, blank=True)
    disposition = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    has_transcript = models.BooleanField(default=False)
    raw = models.JSONField("raw payload", default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Search columns, computed by the database (bulk_create/bulk_update need not fill them). They feed the
    # trigram indexes: SQLite FTS5 (trigram tokenizer) and pg_trgm GIN, see recordings/search.py.
    number_digits = models.GeneratedField(
        expression=Concat(_digits("from_number"), Value(" "), _digits("to_number")),
        output_field=models.CharField(max_length=81),
        db_persist=True,
    )
    search_text = models.GeneratedField(
        expression=Lower(Concat(F("agent"), Value(" "), F("campaign"), Value(" "), F("remote_id"))),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "remote_id"], name="call_remote_id_unique_per_account"),
        ]
        indexes = [
            # Newest first is the default order; (started_at, id) makes the keyset stable.
            models.Index(fields=["-started_at", "-id"], name="call_started_idx"),
            models.Index(fields=["provider", "-started_at", "-id"], name="call_provider_started_idx"),
            models.Index(fields=["account", "-started_at", "-id"], name="call_account_started_idx"),
            models.Index(fields=["direction", "-started_at", "-id"], name="call_direction_started_idx"),
            # The agent and campaign filters ignore case.
            models.Index(Lower("agent"), F("started_at").desc(), F("id").desc(), name="call_agent_ci_started_idx"),
            models.Index(
                Lower("campaign"), F("started_at").desc(), F("id").desc(), name="call_campaign_ci_started_idx"
            ),
            models.Index(fields=["-duration", "-id"], name="call_duration_idx"),
            models.Index(fields=["from_number"], name="call_from_idx"),
            models.Index(fields=["to_number"], name="call_to_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} call {self.remote_id}"


class Recording(models.Model):
    """A recording of a call; `locator` holds what the provider adapter needs to fetch its media."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        PROCESSING = "processing", "Processing"
        DELETED = "deleted", "Deleted"
        MEDIA_DELETED = "media_deleted", "Media deleted"
        EXPIRED = "expired", "Expired"
        ERROR = "error", "Error"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="recordings")
    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="recordings")
    remote_id = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AVAILABLE)
    content_type = models.CharField(max_length=100, blank=True)
    format = models.CharField(max_length=20, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    locator = models.JSONField(default=dict, blank=True)
    raw = models.JSONField("raw payload", default=dict, blank=True)
    gone_upstream_at = models.DateTimeField(
        null=True, blank=True, help_text="When a sync last found it missing at the provider."
    )
    delete_requested_at = models.DateTimeField(null=True, blank=True)
    delete_requested_kind = models.CharField(max_length=20, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["call", "started_at", "id"]
        permissions = list(PERMISSIONS.items())
        constraints = [
            models.UniqueConstraint(fields=["account", "remote_id"], name="recording_remote_id_unique_per_account"),
        ]
        indexes = [models.Index(fields=["status"], name="recording_status_idx")]

    def __str__(self) -> str:
        return f"Recording {self.remote_id}"

    @property
    def is_playable(self) -> bool:
        return self.status == self.Status.AVAILABLE


class Transcript(models.Model):
    """The text of a recording, with timed speaker segments."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        PROCESSING = "processing", "Processing"
        AVAILABLE = "available", "Available"
        FAILED = "failed", "Failed"

    recording = models.OneToOneField(Recording, on_delete=models.CASCADE, related_name="transcript")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED)
    text = models.TextField(blank=True)
    # [{speaker, start, end, text, confidence}], start and end in seconds.
    segments = models.JSONField(default=list, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Transcript of {self.recording}"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """An append-only record of who did what to which target."""

    class Action(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOCKED_OUT = "locked_out", "Locked out"
        LOGOUT = "logout", "Logout"
        PLAY = "play", "Play"
        DOWNLOAD = "download", "Download"
        EXPORT = "export", "Export"
        EXPORT_DOWNLOAD = "export_download", "Export download"
        DELETE = "delete", "Delete at provider"
        DELETE_MEDIA = "delete_media", "Delete media at provider"
        TRANSCRIBE = "transcribe", "Transcription"
        SYNC = "sync", "Sync"
        IMPORT = "import", "Report import"
        TEST_CONNECTION = "test_connection", "Test connection"
        CACHE_REMOVE = "cache_remove", "Remove cached copy"
        CREDENTIAL_CHANGE = "credential_change", "Credential change"
        ACCOUNT_CHANGE = "account_change", "Account change"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the user is deleted, so the log still says who it was.
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=30, choices=Action.choices)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=50, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_username or 'system'} {self.action} {self.target_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")


class Job(models.Model):
    """Background work that a person started (sync, delete, transcribe, export...), with its progress."""

    class Kind(models.TextChoices):
        SYNC = "sync", "Sync"
        TEST_CONNECTION = "test_connection", "Test connection"
        DELETE = "delete", "Delete at provider"
        DELETE_MEDIA = "delete_media", "Delete media at provider"
        TRANSCRIBE = "transcribe", "Request transcription"
        REFRESH_TRANSCRIPTION = "refresh_transcription", "Refresh transcription"
        REMOVE_CACHE = "remove_cache", "Remove cached copy"
        EXPORT = "export", "Export"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with failures"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    FINISHED = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.EXPIRED)

    kind = models.CharField(max_length=30, choices=Kind.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "kind", "-created_at"], name="job_owner_idx"),
            models.Index(fields=["status"], name="job_status_idx", condition=Q(status__in=["queued", "running"])),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.is_finished else 0
        return min(100, round(100 * self.done / self.total))


class JobItem(models.Model):
    """One item of a job (a recording, an account) and its outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting to retry"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Not supported"
        SKIPPED = "skipped", "Skipped"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.REFUSED, Status.SKIPPED)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    target_type = models.CharField(max_length=50)
    target_id = models.CharField(max_length=50)
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "target_type", "target_id"], name="jobitem_unique_target"),
        ]

    def __str__(self) -> str:
        return f"{self.label or self.target_id}: {self.get_status_display()}"
