"""What the clinician did with a card (CDS Hooks feedback): validated, stored once, linked to the card."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from decisions.cds_hooks.common import JSON, SERVICE_ID, BadRequest, prune
from decisions.cds_hooks.models import CdsAdvice, CdsFeedback
from decisions.cds_hooks.request import _object, _string

CARD_ID_LIMIT = 80  # CdsFeedback.card
OLDEST_FEEDBACK = timedelta(days=366)  # an outcome is reported soon after the card; older is a clock error


@dataclass(frozen=True)
class FeedbackItem:
    card: str
    outcome: str
    outcome_timestamp: datetime
    accepted_suggestions: list[JSON]
    override_reason: JSON


def _timestamp(text: str, where: str, now: datetime, leeway: timedelta) -> datetime:
    field = f"{where}.outcomeTimestamp"
    try:
        stamp = parse_datetime(text)
    except ValueError:
        stamp = None
    if stamp is None:
        raise BadRequest(field, f"{field} must be an ISO 8601 date and time")
    if timezone.is_naive(stamp):
        stamp = stamp.replace(tzinfo=UTC)  # the spec: UTC
    try:
        in_range = now - OLDEST_FEEDBACK <= stamp <= now + leeway
    except OverflowError:
        in_range = False
    if not in_range:
        raise BadRequest(
            field,
            f"{field} {text} is not a time this card could have been acted on: it must lie between a year "
            "ago and now",
        )
    return stamp


MAX_FEEDBACK_ITEMS = 100


def parse_feedback(body: Any, *, now: datetime | None = None, leeway_seconds: int = 60) -> list[FeedbackItem]:
    request = _object(body, "the request body")
    items = request.get("feedback")
    if not isinstance(items, list) or not items:
        raise BadRequest("feedback", "feedback must be a non-empty array of feedback objects")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise BadRequest(
            "feedback", f"feedback has {len(items)} items; at most {MAX_FEEDBACK_ITEMS} are accepted"
        )
    current = now or timezone.now()
    parsed = []
    for index, value in enumerate(items):
        where = f"feedback[{index}]"
        item = _object(value, where)
        card = _string(item, "card", where)
        assert card is not None
        if len(card) > CARD_ID_LIMIT:
            raise BadRequest(f"{where}.card", f"{where}.card is longer than {CARD_ID_LIMIT} characters")
        outcome = _string(item, "outcome", where)
        if outcome not in ("accepted", "overridden"):
            raise BadRequest(f"{where}.outcome", f'{where}.outcome must be "accepted" or "overridden"')
        stamp_text = _string(item, "outcomeTimestamp", where)
        assert stamp_text is not None
        stamp = _timestamp(stamp_text, where, current, timedelta(seconds=leeway_seconds))
        accepted = item.get("acceptedSuggestions")
        field = f"{where}.acceptedSuggestions"
        if accepted is None:
            if outcome == "accepted":
                raise BadRequest(field, f"{field} is required when the outcome is accepted")
            accepted = []
        elif not isinstance(accepted, list) or not all(
            isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"] for s in accepted
        ):
            raise BadRequest(field, f'{field} must be an array of objects with an "id" string')
        reason = item.get("overrideReason")
        field = f"{where}.overrideReason"
        if reason is None:
            reason = {}
        else:
            reason = dict(_object(reason, field))
            coding = reason.get("reason")
            if coding is not None and (
                not isinstance(coding, dict)
                or not all(isinstance(coding.get(k), str) for k in ("system", "code"))
            ):
                raise BadRequest(f"{field}.reason", f"{field}.reason must be a Coding with system and code")
            comment = reason.get("userComment")
            if comment is not None and not isinstance(comment, str):
                raise BadRequest(f"{field}.userComment", f"{field}.userComment must be a string")
        parsed.append(
            FeedbackItem(
                card=card,
                outcome=outcome,
                outcome_timestamp=stamp,
                accepted_suggestions=[{"id": s["id"]} for s in accepted],
                override_reason=prune(reason),
            )
        )
    return parsed


def store_feedback(items: list[FeedbackItem], service_id: str = SERVICE_ID) -> None:
    """Each report once, however often it is sent, linked to its card when the record holds it;
    under the service id it was sent to (one per hook, or the older one for both)."""
    advice = {a.card: a for a in CdsAdvice.objects.filter(card__in=[item.card for item in items])}
    with transaction.atomic():
        for item in items:
            CdsFeedback.objects.get_or_create(
                service_id=service_id,
                card=item.card,
                outcome=item.outcome,
                outcome_timestamp=item.outcome_timestamp,
                defaults={
                    "accepted_suggestions": item.accepted_suggestions,
                    "override_reason": item.override_reason,
                    "advice": advice.get(item.card),
                },
            )
