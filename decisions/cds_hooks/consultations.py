"""The consultation record: each call's outcome stored without patient identifiers, and its retention."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from decisions.cds_hooks.auth import Purge
from decisions.cds_hooks.cards import Outcome
from decisions.cds_hooks.models import CdsAdvice, CdsConsultation

logger = logging.getLogger(__name__)

consultation_purge = Purge(3600)


def ours(consult_ids: set[str]) -> set[str]:
    """Which of these consult ids this service issued (so only our own ratings are replaced)."""
    if not consult_ids:
        return set()
    try:
        found = CdsConsultation.objects.filter(consult_id__in=consult_ids).values_list(
            "consult_id", flat=True
        )
        return set(found)
    except DatabaseError:
        # Without the record, ours are still known by position (our consult id follows our rating).
        logger.warning("CDS Hooks: consult ids could not be looked up; the database is unreachable")
        return set()


def record_consultation(
    *,
    hook: str,
    hook_instance: str,
    consult_id: str,
    tenant: str,
    skipped: Sequence[str],
    outcomes: Sequence[Outcome],
    retention_days: int,
) -> None:
    """Store the call. A database failure is logged, never turned into a failed call: the advice stands."""
    try:
        with transaction.atomic():
            consultation = CdsConsultation.objects.create(
                hook=hook,
                hook_instance=hook_instance[:100],
                consult_id=consult_id,
                tenant=tenant,
                skipped=list(skipped),
            )
            CdsAdvice.objects.bulk_create(
                CdsAdvice(
                    consultation=consultation,
                    card=outcome.card,
                    topic_key=outcome.topic,
                    release_version=outcome.release,
                    procedure_key=outcome.procedure,
                    scenario_key=outcome.scenario or "",
                    rating=outcome.rating or "",
                    verdict=outcome.verdict[:200],
                    known=dict(outcome.known),
                )
                for outcome in outcomes
            )
        if retention_days > 0 and consultation_purge.due():
            cutoff = timezone.now() - timedelta(days=retention_days)
            CdsConsultation.objects.filter(created_at__lt=cutoff).delete()
    except DatabaseError:
        logger.exception("CDS Hooks: the consultation %s could not be recorded", consult_id)
