"""The content owners' roles (groups such as editor, publisher, clinical_reviewer) as the
migrations leave them: the one list of their permissions that tests use.

tests/conftest.py notes them from the test database right after the migrations ran (`remember`).
A transactional test empties the database, groups included (Django makes permissions again, not
groups): `group` and `restore_all` make them again from that note, never from a list typed here,
so a migration that grants a role more is followed without editing a test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import Group

# group name -> its permissions as (app label, codename), as the migrations made them.
_MIGRATED: dict[str, list[tuple[str, str]]] = {}


def remember() -> None:
    """Notes every group and its permissions; called once per test process, after migrating."""
    from django.contrib.auth.models import Group

    for found in Group.objects.all():
        _MIGRATED[found.name] = list(found.permissions.values_list("content_type__app_label", "codename"))


def permissions(name: str) -> set[tuple[str, str]]:
    """The role's permissions as (app label, codename), as the migrations granted them."""
    assert name in _MIGRATED, f"the migrations make no group {name!r} (they make {sorted(_MIGRATED)})"
    return set(_MIGRATED[name])


def group(name: str) -> Group:
    """The role's group with exactly the migrations' permissions (made again if a test emptied it)."""
    from django.contrib.auth.models import Group, Permission
    from django.db.models import Q

    wanted = Q(pk__in=[])
    for app_label, codename in permissions(name):
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    found, _created = Group.objects.get_or_create(name=name)
    found.permissions.set(Permission.objects.filter(wanted))
    return found


def restore_all() -> None:
    """Every role as the migrations made it (after a transactional test emptied the database)."""
    for name in _MIGRATED:
        group(name)
