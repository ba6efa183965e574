"""Requests that need the database must never keep clinicians waiting (issue #20).

gunicorn runs threaded workers (gunicorn.conf.py), so a request stuck on a frozen database holds
one thread, not a whole worker. Two rules keep those threads for clinicians:

- **Known outage: answer at once.** Once this process has seen the database unreachable (a release
  check, or any request's database error), requests that need it get the 503 page or problem at
  once, without trying, until the background probe (served.outage, every DB_RETRY_SECONDS) sees
  it back.
- **A cap.** At most DB_BOUND_CONCURRENCY such requests run at once in a process; one more gets
  the 503 at once rather than a thread. With GUNICORN_THREADS threads, the rest stay free for the
  clinician pages, the API and /healthz, which are served from memory.

Which requests need the database: the admin, the SMART launch and callback (their pending launch is
a session), CDS Hooks feedback, hook calls when JWTs are verified (the replay check) and clinician
feedback posts.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from decisions.knowledge import served
from decisions.web.guards import unavailable_response

_FEEDBACK = re.compile(r"^/t/[^/]+/feedback/$")


def needs_database(request: HttpRequest) -> bool:
    path = request.path_info
    if path.startswith(("/admin/", "/smart/")):
        return True  # the SMART launch keeps its state in a session (decisions/smart/views.py)
    if request.method == "POST":
        if path.startswith("/cds-services/"):
            # Feedback is stored; a hook call needs the database for the JWT replay check only
            # (with verification off it answers from memory, and its record is best effort).
            return path.endswith("/feedback") or bool(settings.CDS_HOOKS_VERIFY_JWT)
        return bool(_FEEDBACK.match(path))
    return False


class DatabaseGateMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.slots = threading.BoundedSemaphore(max(1, int(settings.DB_BOUND_CONCURRENCY)))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not needs_database(request):
            return self.get_response(request)
        if served.outage.since is not None:
            served.outage.retry_in_background()
            return unavailable_response(request)
        if not self.slots.acquire(blocking=False):
            return unavailable_response(request)
        try:
            return self.get_response(request)
        finally:
            self.slots.release()
