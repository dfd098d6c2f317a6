"""Create the role groups from the role matrix in recordings/roles.py."""

from django.db import migrations

from recordings.roles import sync_roles


class Migration(migrations.Migration):
    dependencies = [
        ("recordings", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
