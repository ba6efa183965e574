"""Links from a card back to Imaging Advisor: the wizard pre-filled, and a SMART app link.

The `smart` link's `appContext` carries what the card knew (topic, release, the answers read from
the record, the consult id), signed with the deployment's SECRET_KEY so an app launched from it can
trust it and nobody can forge answers into it (the Argonaut PAMA guide asks for tamper-proof
appContext). It holds no patient identifier. `read_app_context` is the one place that reads it:
the SMART callback (decisions/smart/views.py) calls it with the `appContext` of the EHR's token
response to pre-fill the answers; the wizard reads none from its query string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core import signing

from decisions import engine
from decisions.clinician.links import wizard_url

APP_CONTEXT_SALT = "imaging-advisor.cds-hooks.app-context"
APP_CONTEXT_MAX_AGE_SECONDS = 24 * 3600  # a launch follows the card; a day is generous


@dataclass(frozen=True)
class AppContext:
    topic: str
    answers: Mapping[str, str] = field(default_factory=dict)
    release: int | None = None
    consult_id: str | None = None


def wizard_link(base_url: str, topic: str, answers: Mapping[str, str], release: int | None = None) -> str:
    """The absolute wizard URL with these answers (on the path, or still ahead of it)."""
    return base_url + wizard_url(topic, dict(answers), release)


def make_app_context(context: AppContext) -> str:
    payload = {"t": context.topic, "a": dict(context.answers), "r": context.release, "c": context.consult_id}
    return signing.dumps(payload, salt=APP_CONTEXT_SALT, compress=True)


def read_app_context(value: str | None, *, max_age: int = APP_CONTEXT_MAX_AGE_SECONDS) -> AppContext | None:
    """The context of a launch from one of our cards; None when absent, forged, garbled or too old."""
    if not value or len(value) > 4000:
        return None
    try:
        payload = signing.loads(value, salt=APP_CONTEXT_SALT, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired is a BadSignature too
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), str):
        return None
    answers = payload.get("a")
    if not isinstance(answers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in answers.items()
    ):
        return None
    release = payload.get("r")
    consult = payload.get("c")
    return AppContext(
        topic=payload["t"],
        answers=answers,
        release=release if isinstance(release, int) and not isinstance(release, bool) else None,
        consult_id=consult if isinstance(consult, str) else None,
    )


def wizard_url_for_app_context(value: str | None, snapshot: engine.Snapshot) -> str | None:
    """Where the wizard should send a SMART launch with this appContext (a relative URL), or None.

    `snapshot` is the topic's release to answer from. Answers on the path so far and to questions
    still ahead of it go in the URL; answers the path can no longer reach are left out.
    """
    context = read_app_context(value)
    if context is None or context.topic != snapshot.topic_key:
        return None
    try:
        recommendation = engine.recommend(snapshot, dict(context.answers), strict=False)
    except engine.AnswerError:
        return None  # the release no longer has one of these questions or choices
    return wizard_url(context.topic, dict(recommendation.answers), context.release)
