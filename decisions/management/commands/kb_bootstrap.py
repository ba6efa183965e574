"""Load and publish the shipped knowledge base; upgrade a topic only while nobody has edited it.

On a database without the topic, the shipped file is imported and published. On a database whose
latest release is an earlier shipped revision, unchanged since (release and draft alike), the new
revision is published as a new release. Anything else is content owners' work: it is left alone.
The command says how to review the shipped file only when it is really newer than what was loaded
(no release ever held it); once it was loaded, content owners' later releases are the newer content.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from decisions.engine.changes import content_diff
from decisions.knowledge.document import DocumentError, export_topic, import_document, loads
from decisions.knowledge.models import Release, Topic
from decisions.knowledge.publishing import PublishRefused, publish

SHIPPED = Path(__file__).resolve().parents[2] / "data"
# Earlier shipped revisions, `<topic key>.<revision>.json`, kept to recognise an untouched install.
PREVIOUS = SHIPPED / "previous"


def earlier_revisions(topic_key: str) -> dict[int, dict[str, Any]]:
    revisions = {}
    for path in PREVIOUS.glob(f"{topic_key}.*.json"):
        number = path.name.removeprefix(f"{topic_key}.").removesuffix(".json")
        if number.isdecimal():
            revisions[int(number)] = loads(path.read_text(encoding="utf-8"))
    return revisions


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """No difference an editor would see (fields added later count as their defaults)."""
    return not content_diff(a, b)


class Command(BaseCommand):
    help = (
        "Import and publish each shipped topic the database does not have, and publish a newer "
        "shipped revision over an earlier one that nobody has changed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for path in sorted(SHIPPED.glob("*.json")):
            document = loads(path.read_text(encoding="utf-8"))
            key = document["topic"]["key"]
            topic = Topic.objects.filter(key=key).first()
            if topic is None:
                release = self._publish(path, document, f"Shipped knowledge base ({path.name})")
                self.stdout.write(f"{key}: loaded and published as release {release.version}")
                continue
            latest = topic.latest_release()
            if latest is not None and same_content(latest.content, document):
                self.stdout.write(f"{key}: already up to date (release {latest.version})")
                continue
            earlier = earlier_revisions(key)
            untouched = (
                latest is not None
                and any(same_content(latest.content, old) for old in earlier.values())
                and same_content(latest.content, export_topic(topic))
            )
            revision = max(earlier, default=0) + 1
            loaded = self._release_of(topic, document)
            if loaded is not None and latest is not None:
                # The shipped file is the one content owners started from: their later releases
                # are the newer content, and importing the file would revert them.
                self.stdout.write(
                    f"{key}: shipped revision {revision} was loaded as release {loaded.version}; "
                    f"content owners' releases since (latest: release {latest.version}) are kept"
                )
                continue
            if untouched and latest is not None:
                release = self._publish(
                    path, document, f"Shipped knowledge base, clinical revision {revision} ({path.name})"
                )
                self.stdout.write(
                    f"{key}: release {latest.version} was the unchanged shipped content; "
                    f"published shipped revision {revision} as release {release.version}"
                )
                continue
            self.stdout.write(
                self.style.WARNING(
                    f"{key}: a newer shipped revision ({revision}) exists in {path}, but content owners "
                    "have changed this topic, so it was left as it is. To review it: Admin → Topics → "
                    "Import a topic, choose that file, and read the preview of every change before "
                    f"importing it into the draft (or `manage.py kb_import {path}` from a shell), then "
                    "review and publish as usual. Importing replaces the draft: content owners' "
                    "changes that the preview shows as removed must be made again."
                )
            )

    @staticmethod
    def _release_of(topic: Topic, document: dict[str, Any]) -> Release | None:
        """The newest release that holds exactly this shipped document, if any ever did."""
        for release in topic.releases.order_by("-version"):
            if same_content(release.content, document):
                return release
        return None

    @staticmethod
    def _publish(path: Path, document: dict[str, Any], summary: str) -> Release:
        try:
            # One transaction: a file that cannot be published leaves nothing behind.
            with transaction.atomic():
                return publish(import_document(document), summary=summary)
        except (DocumentError, PublishRefused) as error:
            raise CommandError(f"{path.name}: {error}") from None
