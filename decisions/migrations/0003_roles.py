"""Create the content-owner roles: editor (edits the draft) and publisher (also publishes)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

KNOWLEDGE_BASE = [
    "reference",
    "caveat",
    "procedure",
    "finding",
    "topic",
    "question",
    "choice",
    "routingnode",
    "branch",
    "scenario",
    "rating",
    "nextstep",
]


def editor_codenames() -> list[str]:
    codenames = [
        f"{action}_{model}" for model in KNOWLEDGE_BASE for action in ("add", "change", "delete", "view")
    ]
    codenames += ["view_release", "view_feedback", "change_feedback", "view_usagecount"]
    return codenames


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    editor_permissions = Permission.objects.filter(
        content_type__app_label="decisions", codename__in=editor_codenames()
    )
    editor, _ = Group.objects.get_or_create(name="editor")
    editor.permissions.set(editor_permissions)
    publisher, _ = Group.objects.get_or_create(name="publisher")
    publisher.permissions.set(
        list(editor_permissions)
        + list(Permission.objects.filter(content_type__app_label="decisions", codename="publish_topic"))
    )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["editor", "publisher"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("decisions", "0002_workflow"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
