"""Load a topic document into the draft, atomically."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.kb_document import DocumentError, import_document
from decisions.kb_input import read_document


class Command(BaseCommand):
    help = "Import a topic JSON file into the draft. Any error changes nothing and names the entry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a file written by kb_export")

    def handle(self, *args: Any, file: Any, **options: Any) -> None:
        try:
            data = Path(file).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {file}: {error.strerror}") from None
        try:
            topic = import_document(read_document(data))
        except DocumentError as error:
            raise CommandError(f"{file}: nothing imported: {error}") from None
        self.stdout.write(f"imported {topic.key} into the draft; check with kb_check, then kb_publish")
