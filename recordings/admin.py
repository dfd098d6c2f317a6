"""Admin pages: provider accounts with write-only credentials, calls, recordings, jobs and the audit log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header

from .csvsafe import csv_lines
from .forms import ProviderAccountForm, ReportUploadForm, credential_field_name, option_field_name
from .models import AuditEvent, Call, Job, JobItem, ProviderAccount, Recording, Transcript
from .providers import REGISTRY, NotSupportedReport
from .services.actions import accounts_job, plan_by_provider, recording_targets, recordings_job
from .services.audit import audit_record
from .services.imports import ReportError, report_import


def message_job(modeladmin: admin.ModelAdmin, request: HttpRequest, job: Job) -> None:
    """Tell the admin the job was queued, with a link to its progress page."""
    refused = job.items.filter(status=JobItem.Status.REFUSED).count()
    level = messages.WARNING if refused else messages.SUCCESS
    modeladmin.message_user(
        request,
        format_html(
            '{} queued for {} item(s){}: <a href="{}">follow job #{}</a>.',
            job.get_kind_display(),
            job.total,
            f", {refused} refused" if refused else "",
            reverse("job_detail", args=[job.pk]),
            job.pk,
        ),
        level,
    )


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["name", "provider", "is_active", "last_synced_at", "last_sync_summary"]
    list_filter = ["provider", "is_active", "last_sync_status"]
    search_fields = ["name"]
    readonly_fields = [
        "import_link",
        "last_synced_at",
        "last_sync_status",
        "last_sync_error",
        "last_sync_counts",
        "sync_watermark",
    ]

    actions = ["sync_now", "test_connection"]

    class Media:
        js = ["js/admin-provider-account.js"]

    @admin.display(description="Last sync")
    def last_sync_summary(self, obj: ProviderAccount) -> str:
        if obj.last_sync_status == ProviderAccount.SyncStatus.ERROR:
            return f"Failed: {obj.last_sync_error}"
        return obj.get_last_sync_status_display()

    @admin.action(description="Sync now", permissions=["manage"])
    def sync_now(self, request: HttpRequest, queryset) -> None:
        message_job(self, request, accounts_job(kind=Job.Kind.SYNC, accounts=queryset, actor=request.user))

    @admin.action(description="Test connection", permissions=["manage"])
    def test_connection(self, request: HttpRequest, queryset) -> None:
        message_job(self, request, accounts_job(kind=Job.Kind.TEST_CONNECTION, accounts=queryset, actor=request.user))

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("recordings.manage_accounts")

    def get_urls(self):
        custom = [
            path(
                "<int:pk>/import/",
                self.admin_site.admin_view(self.import_report_view),
                name="recordings_provideraccount_import",
            )
        ]
        return custom + super().get_urls()

    def import_report_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Upload a provider report; show every bad row with its line number while good rows are imported."""
        if not self.has_manage_permission(request):
            raise PermissionDenied
        account = get_object_or_404(ProviderAccount, pk=pk)
        form = ReportUploadForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = report_import(account=account, stream=upload, actor=request.user, filename=upload.name)
            except (ReportError, NotSupportedReport) as exc:
                form.add_error("file", str(exc))
            else:
                level = messages.WARNING if result.error_count else messages.SUCCESS
                self.message_user(request, result.summary(), level)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "account": account,
            "form": form,
            "result": result,
            "columns": getattr(account.adapter_class, "report_columns", None),
            "title": f"Import a report into {account.name}",
        }
        return TemplateResponse(request, "admin/recordings/provideraccount/import_report.html", context)

    @admin.display(description="Report import")
    def import_link(self, obj: ProviderAccount) -> str:
        if not obj.pk or not obj.adapter_class.can_import_report:
            return "This provider's calls are synced from its API."
        url = reverse("admin:recordings_provideraccount_import", args=[obj.pk])
        return format_html('<a class="button" href="{}">Import a report…</a>', url)

    def get_fieldsets(self, request: HttpRequest, obj: ProviderAccount | None = None):
        fieldsets = [(None, {"fields": ["name", "provider", "base_url", "is_active"]})]
        providers = [obj.provider] if obj else list(REGISTRY)
        for provider in providers:
            cls = REGISTRY[provider]
            fields = [credential_field_name(provider, f.key) for f in cls.credential_fields]
            fields += [option_field_name(provider, f.key) for f in cls.option_fields]
            fieldsets.append(
                (
                    f"{cls.label} credentials and settings",
                    {"fields": fields, "classes": ["provider-fields", f"provider-{provider}"]},
                )
            )
        if obj:
            fieldsets.append(("Last sync", {"fields": self.readonly_fields}))
        return fieldsets

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("recordings.manage_accounts")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("recordings.manage_accounts")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("recordings.manage_accounts")

    def delete_model(self, request: HttpRequest, obj: ProviderAccount) -> None:
        self.delete_queryset(request, ProviderAccount.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        # An account with calls is protected (on_delete=PROTECT); one without goes, and the log says who removed it.
        for account in queryset:
            with transaction.atomic():
                audit_record(
                    action=AuditEvent.Action.ACCOUNT_CHANGE,
                    target=account,
                    request=request,
                    details={"deleted": True, "name": account.name},
                )
                account.delete()

    def save_model(self, request: HttpRequest, obj: ProviderAccount, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        changed = getattr(form, "changed_credential_keys", [])
        if changed:
            # The audit row names which credentials changed, never their values.
            audit_record(
                action=AuditEvent.Action.CREDENTIAL_CHANGE,
                target=obj,
                request=request,
                details={"fields": changed, "created": not change},
            )
        elif change and form.changed_data:
            audit_record(
                action=AuditEvent.Action.ACCOUNT_CHANGE,
                target=obj,
                request=request,
                details={"fields": [f for f in form.changed_data if not f.startswith("cred__")]},
            )


class ReadOnlyMixin:
    """Rows that come from providers: viewable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class RecordingInline(ReadOnlyMixin, admin.TabularInline):
    model = Recording
    fields = ["remote_id", "status", "format", "duration", "channels", "size_bytes"]
    readonly_fields = fields
    extra = 0
    show_change_link = True

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "remote_id",
        "provider",
        "account",
        "direction",
        "from_number",
        "to_number",
        "agent",
        "started_at",
    ]
    list_filter = ["provider", "direction", "account", "has_transcript"]
    search_fields = ["remote_id", "from_number", "to_number", "agent", "campaign"]
    date_hierarchy = "started_at"
    list_select_related = ["account"]
    show_full_result_count = False
    inlines = [RecordingInline]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Recording)
class RecordingAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["remote_id", "call", "account", "status", "format", "duration", "started_at"]
    list_filter = ["status", "account__provider", "account", "format"]
    search_fields = ["remote_id", "call__remote_id"]
    list_select_related = ["call", "account"]
    show_full_result_count = False
    raw_id_fields = ["call"]
    actions = [
        "delete_at_provider",
        "delete_media_at_provider",
        "request_transcription",
        "refresh_transcription",
        "remove_cached_copy",
    ]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Removing the row would lose track of the provider's copy: deletion goes through the provider action.
        return False

    def has_delete_at_provider_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("recordings.delete_at_provider")

    def has_request_transcription_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("recordings.request_transcription")

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("recordings.manage_accounts")

    @admin.action(description="Delete at the provider (whole recording)…", permissions=["delete_at_provider"])
    def delete_at_provider(self, request: HttpRequest, queryset):
        return self._confirm_then_run(request, queryset, Job.Kind.DELETE)

    @admin.action(description="Delete media at the provider (keep metadata)…", permissions=["delete_at_provider"])
    def delete_media_at_provider(self, request: HttpRequest, queryset):
        return self._confirm_then_run(request, queryset, Job.Kind.DELETE_MEDIA)

    @admin.action(description="Request transcription", permissions=["request_transcription"])
    def request_transcription(self, request: HttpRequest, queryset) -> None:
        message_job(self, request, recordings_job(kind=Job.Kind.TRANSCRIBE, recordings=queryset, actor=request.user))

    @admin.action(description="Refresh transcription", permissions=["request_transcription"])
    def refresh_transcription(self, request: HttpRequest, queryset) -> None:
        job = recordings_job(kind=Job.Kind.REFRESH_TRANSCRIPTION, recordings=queryset, actor=request.user)
        message_job(self, request, job)

    @admin.action(description="Remove the cached copy", permissions=["manage"])
    def remove_cached_copy(self, request: HttpRequest, queryset) -> None:
        message_job(self, request, recordings_job(kind=Job.Kind.REMOVE_CACHE, recordings=queryset, actor=request.user))

    def _confirm_then_run(self, request: HttpRequest, queryset, kind: str):
        """Like Django's delete_selected: an intermediate page per provider; the job starts on POST post=yes."""
        if request.POST.get("post") == "yes":
            message_job(self, request, recordings_job(kind=kind, recordings=queryset, actor=request.user))
            return None
        targets = recording_targets(kind=kind, recordings=queryset)
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "opts": self.model._meta,
            "kind": kind,
            "kind_label": Job.Kind(kind).label,
            "action": request.POST.get("action", ""),
            "plans": plan_by_provider(targets, queryset),
            "to_do": sum(1 for t in targets if not (t.refused or t.skipped)),
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media_only": kind == Job.Kind.DELETE_MEDIA,
        }
        return TemplateResponse(request, "admin/recordings/recording/delete_at_provider_confirmation.html", context)


@admin.register(Transcript)
class TranscriptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["recording", "status", "requested_at", "completed_at"]
    list_filter = ["status"]
    search_fields = ["recording__remote_id"]
    list_select_related = ["recording"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


AUDIT_CSV_COLUMNS = [
    "time_utc", "user", "action", "target_type", "target_id", "target", "provider", "client_address", "details",
]  # fmt: skip


def _audit_rows(events) -> Iterator[list]:
    yield AUDIT_CSV_COLUMNS
    for event in events:
        yield [
            event.created_at.astimezone(dt.UTC).isoformat(),
            event.actor_username,
            event.action,
            event.target_type,
            event.target_id,
            event.target_label,
            event.provider,
            event.client_ip or "",
            json.dumps(event.details, sort_keys=True, ensure_ascii=False) if event.details else "",
        ]


class WhoListFilter(admin.RelatedOnlyFieldListFilter):
    """The users that appear in the audit log (one query on the actor index), titled "who"."""

    def __init__(self, field, request, params, model, model_admin, field_path) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "who"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_username", "action", "target_label", "provider", "client_ip"]
    # Who (users that appear in the log; a deleted user's rows are found by searching the name), what, which
    # provider, when (and the date drill-down above the list).
    list_filter = [("actor", WhoListFilter), "action", "provider", "created_at"]
    search_fields = ["actor_username", "target_label", "target_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["export_csv"]

    @admin.action(description="Export selected as CSV", permissions=["audit"])
    def export_csv(self, request: HttpRequest, queryset) -> StreamingHttpResponse:
        """The selected rows (or every row of the filtered list, with "select all") as CSV, streamed."""
        audit_record(action=AuditEvent.Action.EXPORT, request=request, details={"format": "csv", "of": "audit log"})
        rows = queryset.order_by("created_at", "id").iterator(chunk_size=2000)
        body = csv_lines(_audit_rows(rows))
        response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y-%m-%d_%H%M")
        response["Content-Disposition"] = content_disposition_header(True, f"audit-log_{stamp}.csv")
        response["Cache-Control"] = "private, no-store"
        return response

    def has_audit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("recordings.view_audit_log")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("recordings.view_audit_log")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class JobItemInline(ReadOnlyMixin, admin.TabularInline):
    model = JobItem
    fields = ["label", "status", "message", "attempts", "updated_at"]
    readonly_fields = fields
    extra = 0

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "status", "done", "total", "created_by", "created_at", "finished_at", "page_link"]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    readonly_fields = ["page_link"]
    inlines = [JobItemInline]

    @admin.display(description="Progress page")
    def page_link(self, obj: Job) -> str:
        return format_html('<a href="{}">Job #{}</a>', reverse("job_detail", args=[obj.pk]), obj.pk)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
