"""Give both content-owner roles the EHR code tables and the CDS Hooks feedback log."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAMES = [
    *(
        f"{action}_{model}"
        for model in ("choicecode", "procedurecode")
        for action in ("add", "change", "delete", "view")
    ),
    "view_cdsfeedback",
]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="decisions", codename__in=CODENAMES))
    for group in Group.objects.filter(name__in=["editor", "publisher"]):
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="decisions", codename__in=CODENAMES))
    for group in Group.objects.filter(name__in=["editor", "publisher"]):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("decisions", "0004_ehr_integration"), ("decisions", "0003_roles")]

    operations = [migrations.RunPython(grant, revoke)]
