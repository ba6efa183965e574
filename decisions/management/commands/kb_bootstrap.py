"""Load and publish the shipped knowledge base, only for topics the database does not have yet."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from decisions.kb_document import DocumentError, import_document, loads
from decisions.models import Topic
from decisions.releases import PublishRefused, publish

SHIPPED = Path(__file__).resolve().parents[2] / "data"


class Command(BaseCommand):
    help = "First run: import and publish each shipped topic the database does not have."

    def handle(self, *args, **options):
        for path in sorted(SHIPPED.glob("*.json")):
            document = loads(path.read_text(encoding="utf-8"))
            key = document["topic"]["key"]
            if Topic.objects.filter(key=key).exists():
                self.stdout.write(f"{key}: already in the database, left as it is")
                continue
            try:
                # One transaction: a file that cannot be published leaves nothing behind.
                with transaction.atomic():
                    topic = import_document(document)
                    release = publish(topic, summary=f"Shipped knowledge base ({path.name})")
            except (DocumentError, PublishRefused) as error:
                raise CommandError(f"{path.name}: {error}") from None
            self.stdout.write(f"{key}: loaded and published as release {release.version}")
