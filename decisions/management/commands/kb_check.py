"""Run the integrity check on the draft of one topic, or all topics."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.engine import integrity
from decisions.knowledge.models import Topic
from decisions.knowledge.publishing import check_topic


class Command(BaseCommand):
    help = "Report every integrity problem of the draft; exit 1 when there are errors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", nargs="?", help="topic key (default: every topic)")

    def handle(self, *args: Any, topic: Any, **options: Any) -> None:
        topics = Topic.objects.filter(key=topic) if topic else Topic.objects.all()
        if topic and not topics:
            raise CommandError(
                f"no topic {topic!r}; topics: {', '.join(Topic.objects.values_list('key', flat=True))}"
            )
        failed = False
        for item in topics.order_by("key"):
            problems = check_topic(item)
            errors = sum(p.severity == integrity.ERROR for p in problems)
            self.stdout.write(f"{item.key}: {errors} error(s), {len(problems) - errors} warning(s)")
            for problem in problems:
                self.stdout.write(f"  {problem.line}")
            failed = failed or errors > 0
        if failed:
            raise CommandError("integrity errors found", returncode=1)
