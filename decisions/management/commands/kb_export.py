"""Write a topic's draft as its reviewable JSON document."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.knowledge.document import dumps, export_topic
from decisions.knowledge.models import Topic


class Command(BaseCommand):
    help = "Export a topic as JSON (stable key order; diff-friendly)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="topic key")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")

    def handle(self, *args: Any, topic: Any, output: Any, **options: Any) -> None:
        try:
            item = Topic.objects.get(key=topic)
        except Topic.DoesNotExist:
            raise CommandError(f"no topic {topic!r}") from None
        text = dumps(export_topic(item))
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
