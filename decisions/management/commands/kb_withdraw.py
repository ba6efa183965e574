"""Withdraw a topic from clinicians with a reason, or reinstate it (`--reinstate`)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.knowledge.models import Topic
from decisions.knowledge.publishing import AvailabilityRefused, PublishBusy, reinstate, withdraw


class Command(BaseCommand):
    help = "Withdraw a topic (its pages answer 410 with the reason), or reinstate it with --reinstate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="topic key")
        parser.add_argument("--reason", required=True, help="why, as clinicians will read it")
        parser.add_argument(
            "--reinstate", action="store_true", help="publish a withdrawn topic again instead"
        )

    def handle(self, *args: Any, topic: Any, reason: Any, reinstate: Any = False, **options: Any) -> None:
        run(self, topic, reason, reinstating=bool(reinstate))


def run(command: BaseCommand, topic_key: str, reason: str, *, reinstating: bool) -> None:
    try:
        topic = Topic.objects.get(key=topic_key)
    except Topic.DoesNotExist:
        raise CommandError(f"no topic {topic_key!r}") from None
    try:
        (reinstate if reinstating else withdraw)(topic, reason=reason)
    except (AvailabilityRefused, PublishBusy) as error:
        raise CommandError(f"nothing done: {error}") from None
    command.stdout.write(f"{topic.key} {'reinstated' if reinstating else 'withdrawn'}")
