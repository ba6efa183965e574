"""Publish a withdrawn topic again (the same as `kb_withdraw TOPIC --reinstate --reason …`)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from decisions.management.commands.kb_withdraw import run


class Command(BaseCommand):
    help = "Reinstate a withdrawn topic: its latest live release answers clinicians again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="topic key")
        parser.add_argument("--reason", required=True, help="why, kept in the topic's history")

    def handle(self, *args: Any, topic: Any, reason: Any, **options: Any) -> None:
        run(self, topic, reason, reinstating=True)
