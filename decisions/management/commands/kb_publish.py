"""Freeze a topic's draft as a new release, if the integrity check passes."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.knowledge.models import Topic
from decisions.knowledge.publishing import NothingToPublish, PublishBusy, PublishRefused, publish


class Command(BaseCommand):
    help = "Run the integrity check and publish the draft as release N+1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="topic key")
        parser.add_argument("--summary", required=True, help="what changed, for reviewers and clinicians")

    def handle(self, *args: Any, topic: Any, summary: Any, **options: Any) -> None:
        try:
            item = Topic.objects.get(key=topic)
        except Topic.DoesNotExist:
            raise CommandError(f"no topic {topic!r}") from None
        try:
            release = publish(item, summary=summary)
        except PublishRefused as error:
            for problem in error.problems:
                self.stderr.write(f"  {problem.line}")
            raise CommandError("not published: fix the integrity errors above") from None
        except (NothingToPublish, PublishBusy) as error:
            raise CommandError(f"not published: {error}") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"published {item.key} release {release.version}")
