"""Requests that need the database never take the threads clinicians need (decisions/web/db_gate.py)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError
from django.http import HttpResponse
from django.test import Client, RequestFactory

from decisions.knowledge import served
from decisions.web.db_gate import DatabaseGateMiddleware
from tests.ops.outage_probe import ANSWERS

pytestmark = pytest.mark.django_db


def fail(*args, **kwargs):
    raise OperationalError("could not connect to server: Connection refused")


def test_once_the_database_failed_admin_requests_get_a_503_at_once_and_clinicians_are_served(
    client, editor, published_shipped, monkeypatch
):
    client.force_login(editor)
    page = f"/t/lumbar-metastasis/?{ANSWERS}"
    assert client.get(page).status_code == 200  # loaded while the database answers
    from decisions.knowledge.models import Topic

    monkeypatch.setattr(Topic.objects, "get_queryset", fail)
    assert client.get("/admin/decisions/topic/").status_code == 503  # found out the hard way
    tried: list[str] = []
    monkeypatch.setattr(served.outage, "retry_in_background", lambda: tried.append("retry"))

    response = client.get("/admin/")  # would query the database (the session, the topics)

    assert response.status_code == 503
    assert response["Retry-After"]
    assert tried == ["retry"]  # the background probe is asked to look again
    assert client.get(page).status_code == 200
    assert client.get("/healthz").status_code == 200

    served.outage.recovered()  # what the background probe does when the database answers
    monkeypatch.setattr(
        Topic.objects, "get_queryset", Topic.objects.__class__.get_queryset.__get__(Topic.objects)
    )
    assert client.get("/admin/").status_code == 200


def test_requests_that_need_the_database_beyond_the_cap_get_a_503_at_once(settings):
    settings.DB_BOUND_CONCURRENCY = 2
    stuck = threading.Event()
    entered = threading.Semaphore(0)

    def view(request):
        if request.path_info.startswith("/admin/"):
            entered.release()
            stuck.wait(10)  # a database that does not answer
        return HttpResponse("ok")

    gate = DatabaseGateMiddleware(view)
    factory = RequestFactory()
    waiting = [threading.Thread(target=gate, args=(factory.get("/admin/"),)) for _ in range(2)]
    for thread in waiting:
        thread.start()
    for _ in waiting:
        assert entered.acquire(timeout=5)
    try:
        started = time.monotonic()
        third = gate(factory.get("/admin/decisions/topic/"))
        feedback = gate(factory.post("/t/lumbar-metastasis/feedback/", {"reason": "other"}))
        clinician = gate(factory.get("/t/lumbar-metastasis/"))
        elapsed = time.monotonic() - started
    finally:
        stuck.set()
        for thread in waiting:
            thread.join(5)

    assert (third.status_code, feedback.status_code, clinician.status_code) == (503, 503, 200)
    assert elapsed < 1.0
    # The slots are given back: once the database answers, the admin is served again.
    assert gate(factory.get("/admin/")).status_code == 200


def test_a_verified_cds_call_is_refused_at_once_during_a_known_outage(client, settings, published_shipped):
    # With JWTs verified, the replay check needs the database (README: 503 rather than unchecked).
    settings.CDS_HOOKS_VERIFY_JWT = True
    served.outage.failed(OperationalError("down"))
    served.outage.last_attempt = time.monotonic()  # a retry just ran: none is started now

    response = Client().post("/cds-services/imaging-advisor", data=b"{}", content_type="application/json")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
