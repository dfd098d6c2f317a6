"""The role matrix: the single table of which group holds which permission.

A data migration (and `manage.py sync_roles`) creates the groups from this table; views, templates and admin
actions check the permissions, never the group names.
"""

from __future__ import annotations

# Our own permissions, declared on the Recording model (codename -> description).
PERMISSIONS: dict[str, str] = {
    "listen_recording": "Can listen to recordings and read transcripts",
    "download_recording": "Can download recordings",
    "export_recordings": "Can export recordings",
    "delete_at_provider": "Can delete recordings at the provider",
    "request_transcription": "Can request transcriptions",
    "view_audit_log": "Can view the audit log",
    "manage_accounts": "Can manage provider accounts and credentials",
}

SUPERVISORS = "Supervisors"
EXPORTERS = "Exporters"
ADMINS = "Admins"

_SUPERVISOR = {"listen_recording"}
_EXPORTER = _SUPERVISOR | {"download_recording", "export_recordings"}
_ADMIN = set(PERMISSIONS) | {
    # Django's model permissions, for the admin site.
    "view_provideraccount",
    "add_provideraccount",
    "change_provideraccount",
    "delete_provideraccount",
    "view_call",
    "view_recording",
    "view_transcript",
    "view_auditevent",
    "view_job",
    "view_jobitem",
}

# group name -> permission codenames (all in the `recordings` app)
ROLES: dict[str, frozenset[str]] = {
    SUPERVISORS: frozenset(_SUPERVISOR),
    EXPORTERS: frozenset(_EXPORTER),
    ADMINS: frozenset(_ADMIN),
}

# Roles whose members use the Django admin (is_staff).
STAFF_ROLES = frozenset({ADMINS})


def sync_roles(apps=None, schema_editor=None) -> None:
    """Create or update the groups so they hold exactly the permissions of ROLES."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    apps = apps or global_apps
    # Permissions are normally created after all migrations (post_migrate); make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        perms = list(Permission.objects.filter(content_type__app_label="recordings", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in perms}
        if missing:
            raise RuntimeError(f"Role {group_name} names unknown permissions: {sorted(missing)}")
        group.permissions.set(perms)
