"""Forms: the provider account form with each provider's own write-only credential inputs."""

from __future__ import annotations

from django import forms

from .models import ProviderAccount
from .providers import REGISTRY, AccountField


def credential_field_name(provider: str, key: str) -> str:
    return f"cred__{provider}__{key}"


def option_field_name(provider: str, key: str) -> str:
    return f"opt__{provider}__{key}"


def _credential_input(spec: AccountField) -> forms.Field:
    # Never rendered back (render_value=False; text inputs get no initial): blank keeps the stored value.
    widget = (
        forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        if spec.secret
        else forms.TextInput(attrs={"autocomplete": "off"})
    )
    return forms.CharField(label=spec.label, required=False, widget=widget, help_text=spec.help_text, strip=True)


def _option_input(spec: AccountField) -> forms.Field:
    return forms.CharField(label=spec.label, required=False, help_text=spec.help_text, max_length=200)


class BaseProviderAccountForm(forms.ModelForm):
    base_url = forms.URLField(
        label="Base URL",
        required=False,
        assume_scheme="https",
        max_length=300,
        help_text="Leave blank for the provider's public API. The demo points this at the sandbox.",
    )

    class Meta:
        model = ProviderAccount
        fields = ["name", "provider", "base_url", "is_active"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        stored = instance.credentials if instance.pk else {}
        for provider, cls in REGISTRY.items():
            for spec in cls.credential_fields:
                name = credential_field_name(provider, spec.key)
                if name in self.fields:
                    self.fields[name].initial = None
                    is_set = instance.pk and provider == instance.provider and stored.get(spec.key)
                    note = "Stored encrypted; leave blank to keep it." if is_set else "Not set."
                    self.fields[name].help_text = f"{spec.help_text} {note}".strip()
            for spec in cls.option_fields:
                name = option_field_name(provider, spec.key)
                if name in self.fields and instance.pk and provider == instance.provider:
                    self.fields[name].initial = instance.options.get(spec.key, "")
        if instance.pk and "provider" in self.fields:
            self.fields["provider"].disabled = True

    def clean(self) -> dict:
        cleaned = super().clean()
        provider = cleaned.get("provider") or self.instance.provider
        cls = REGISTRY.get(provider)
        if cls is None:
            return cleaned
        stored = self.instance.credentials if self.instance.pk else {}
        new_credentials = dict(stored or {})
        self.changed_credential_keys: list[str] = []
        for spec in cls.credential_fields:
            name = credential_field_name(provider, spec.key)
            value = cleaned.get(name) or ""
            if value:
                if value != new_credentials.get(spec.key):
                    self.changed_credential_keys.append(spec.key)
                new_credentials[spec.key] = value
            elif spec.required and not new_credentials.get(spec.key):
                self.add_error(name, f"{cls.label} needs this.")
        options = {}
        for spec in cls.option_fields:
            name = option_field_name(provider, spec.key)
            value = (cleaned.get(name) or "").strip()
            if value:
                options[spec.key] = value
            elif spec.required:
                self.add_error(name, f"{cls.label} needs this.")
        if not (cleaned.get("base_url") or cls.default_base_url):
            self.add_error("base_url", f"{cls.label} has no public API address: enter your server's URL.")
        self.new_credentials = new_credentials
        self.new_options = {**(self.instance.options or {}), **options} if self.instance.pk else options
        return cleaned

    def save(self, commit: bool = True) -> ProviderAccount:
        account = super().save(commit=False)
        account.credentials = self.new_credentials
        account.options = self.new_options
        if commit:
            account.save()
        return account


def _build_account_form() -> type[BaseProviderAccountForm]:
    attrs: dict[str, forms.Field] = {}
    for provider, cls in REGISTRY.items():
        for spec in cls.credential_fields:
            attrs[credential_field_name(provider, spec.key)] = _credential_input(spec)
        for spec in cls.option_fields:
            attrs[option_field_name(provider, spec.key)] = _option_input(spec)
    return type("ProviderAccountForm", (BaseProviderAccountForm,), attrs)


ProviderAccountForm = _build_account_form()


class ReportUploadForm(forms.Form):
    file = forms.FileField(
        label="Report (CSV)",
        help_text="The provider's report exported as CSV (UTF-8). Columns may come in any order.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        from django.conf import settings
        from django.template.defaultfilters import filesizeformat

        upload = self.cleaned_data["file"]
        limit = settings.REPORT_UPLOAD_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}; reports of up to {filesizeformat(limit)} are accepted."
            )
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError("Upload the report as a .csv file (export it from the provider as CSV).")
        head = upload.read(SNIFF_BYTES)
        upload.seek(0)
        problem = not_csv(head, whole=upload.size <= SNIFF_BYTES)
        if problem:
            raise forms.ValidationError(problem)
        return upload


SNIFF_BYTES = 64 * 1024
# What people upload by mistake, by the first bytes of the file.
_NOT_CSV = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or a ZIP archive",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a compressed (gzip) file",
}


def not_csv(head: bytes, *, whole: bool) -> str:
    """Why the first bytes of an upload are not a CSV report, or "" when they may be one."""
    if not head.strip():
        return "The file is empty."
    for magic, what in _NOT_CSV.items():
        if head.startswith(magic):
            return f"This is {what}, not CSV; export the report from the provider as CSV."
    if b"\x00" in head:
        return "This is not a text file; export the report from the provider as CSV."
    first_line, newline, _ = head.partition(b"\n")
    if not newline and not whole:
        return f"The first line is longer than {SNIFF_BYTES // 1024} KB: this is not a CSV report."
    if b"," not in first_line:
        return "The first line has no commas: this is not a CSV report with a header line."
    return ""
