"""Admin pages: provider accounts with write-only credentials, calls, recordings, jobs and the audit log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .forms import ProviderAccountForm, ReportUploadForm, credential_field_name, option_field_name
from .models import AuditEvent, Call, Job, JobItem, ProviderAccount, Recording, Transcript
from .providers import REGISTRY, NotSupportedReport, ProviderError, adapter_for
from .services.audit import audit_record
from .services.imports import ReportError, report_import


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
        from .tasks import sync_account

        queued, refused = 0, []
        for account in queryset:
            if not account.adapter_class.can_sync:
                refused.append(f"{account.name} ({account.get_provider_display()} calls enter by report import)")
                continue
            sync_account.enqueue(account.pk, request.user.pk)
            queued += 1
        if queued:
            self.message_user(request, f"Sync queued for {queued} account(s); the list shows each outcome.")
        if refused:
            self.message_user(request, "Not synced: " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Test connection", permissions=["manage"])
    def test_connection(self, request: HttpRequest, queryset) -> None:
        for account in queryset:
            try:
                message = adapter_for(account).test_connection()
            except ProviderError as exc:
                self.message_user(request, f"{account.name}: {exc}", messages.ERROR)
                outcome = {"ok": False, "error": str(exc)}
            else:
                self.message_user(request, f"{account.name}: {message}", messages.SUCCESS)
                outcome = {"ok": True}
            audit_record(action=AuditEvent.Action.TEST_CONNECTION, target=account, request=request, details=outcome)

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

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Removing the row would lose track of the provider's copy: deletion goes through the provider action.
        return False


@admin.register(Transcript)
class TranscriptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["recording", "status", "requested_at", "completed_at"]
    list_filter = ["status"]
    search_fields = ["recording__remote_id"]
    list_select_related = ["recording"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_username", "action", "target_label", "provider", "client_ip"]
    list_filter = ["action", "provider", "created_at"]
    search_fields = ["actor_username", "target_label", "target_id"]
    date_hierarchy = "created_at"
    show_full_result_count = False

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
    list_display = ["id", "kind", "status", "done", "total", "created_by", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    inlines = [JobItemInline]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
