"""Load a topic document into the draft, atomically (or, with --dry-run, only say what it would do)."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.engine import integrity
from decisions.knowledge.document import DocumentError, import_document
from decisions.knowledge.document_input import read_document
from decisions.knowledge.previews import import_preview


class Command(BaseCommand):
    help = "Import a topic JSON file into the draft. Any error changes nothing and names the entry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a file written by kb_export")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="import nothing: list the changes to the draft and the file's integrity problems "
            "(the admin's import preview)",
        )

    def handle(self, *args: Any, file: Any, dry_run: bool = False, **options: Any) -> None:
        try:
            data = Path(file).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error.strerror}") from None
        try:
            document = read_document(data)
            if dry_run:
                self._preview(import_preview(document))
                return
            topic = import_document(document)
        except DocumentError as error:
            raise CommandError(f"{file}: nothing imported: {error}") from None
        self.stdout.write(f"imported {topic.key} into the draft; check with kb_check, then kb_publish")

    def _preview(self, preview: dict[str, Any]) -> None:
        key = preview["topic_key"]
        if preview["existing"] is None:
            self.stdout.write(f"{key}: a new topic")
        else:
            diff = preview["diff"] or []
            self.stdout.write(f"{key}: {len(diff)} change(s) to the draft")
            for change in diff:
                field = f" {change.field}" if change.field else ""
                self.stdout.write(f"  {change.kind} {change.place or change.where}{field}")
        problems: list[integrity.Problem] = preview["problems"]
        for problem in problems:
            self.stdout.write(problem.line)
        self.stdout.write("dry run: nothing imported")
