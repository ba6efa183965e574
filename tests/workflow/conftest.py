"""Personas of the content owners' workflow: editor, publisher, plain staff and anonymous."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client


def _member_of(django_user_model, username: str, group: str | None):
    # No password: the clients below log in with force_login (and hashing one is slow).
    user = django_user_model.objects.create_user(username, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def editor_user(db, django_user_model):
    """A content owner who edits the draft (group "editor" from the roles migration)."""
    return _member_of(django_user_model, "edna-editor", "editor")


@pytest.fixture
def publisher_user(db, django_user_model):
    """A content owner who may also publish and roll back (group "publisher")."""
    return _member_of(django_user_model, "pete-publisher", "publisher")


@pytest.fixture
def staff_user(db, django_user_model):
    """Staff with admin access but no role: sees the admin, none of the knowledge base."""
    return _member_of(django_user_model, "sam-staff", None)


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def editor_client(editor_user) -> Client:
    return _client_for(editor_user)


@pytest.fixture
def publisher_client(publisher_user) -> Client:
    return _client_for(publisher_user)


@pytest.fixture
def staff_client(staff_user) -> Client:
    return _client_for(staff_user)


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


@pytest.fixture
def reviewer_user(db, django_user_model):
    """A clinician who signs releases off (group "clinical_reviewer")."""
    user = _member_of(django_user_model, "rita-reviewer", "clinical_reviewer")
    user.first_name, user.last_name = "Rita", "Okafor"
    user.save()
    return user


@pytest.fixture
def reviewer_client(reviewer_user) -> Client:
    return _client_for(reviewer_user)
