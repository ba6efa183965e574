"""Sign a release off as a clinical reviewer, for scripted deployments (the admin does the same)."""

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.knowledge.models import REVIEW_INTERVALS, Topic
from decisions.knowledge.publishing import SignOffRefused, sign_off


class Command(BaseCommand):
    help = "Record a clinical reviewer's sign-off of a release (default: the topic's latest)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="topic key")
        parser.add_argument("--release", type=int, help="release number (default: the latest)")
        parser.add_argument("--user", required=True, help="the reviewer's username (group clinical_reviewer)")
        parser.add_argument("--name", help="name as clinicians read it (default: the user's full name)")
        parser.add_argument("--role", required=True, help="role as clinicians read it")
        parser.add_argument(
            "--interval-months",
            type=int,
            default=12,
            choices=[months for months, _ in REVIEW_INTERVALS],
            help="review again within this many months (default 12)",
        )
        parser.add_argument(
            "--interests", required=True, help="declaration of competing interests (“None” when none)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            topic = Topic.objects.get(key=options["topic"])
        except Topic.DoesNotExist:
            raise CommandError(f"no topic {options['topic']!r}") from None
        releases = topic.releases.order_by("-version")
        number = options["release"]
        release = releases.filter(version=number).first() if number else releases.first()
        if release is None:
            which = f"release {number}" if number else "release"
            raise CommandError(f"{topic.key} has no {which}")
        try:
            user = User.objects.get(username=options["user"])
        except User.DoesNotExist:
            raise CommandError(f"no user {options['user']!r}") from None
        try:
            signoff = sign_off(
                release,
                reviewer=user,
                name=options["name"] or user.get_full_name() or user.username,
                role=options["role"],
                competing_interests=options["interests"],
                interval_months=options["interval_months"],
            )
        except SignOffRefused as error:
            raise CommandError(f"not signed off: {error}") from None
        self.stdout.write(
            f"signed off {topic.key} release {release.version} by {signoff.reviewer_name}; "
            f"next review due {signoff.next_review_due.isoformat()}"
        )
