"""Print the recommendation for a set of answers, as JSON, from the latest published release."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions import engine
from decisions.knowledge.served import ReleaseNotFound, snapshot_for


class Command(BaseCommand):
    help = "Print the recommendation for answers given as question=choice pairs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="topic key, e.g. lumbar-metastasis")
        parser.add_argument(
            "answers",
            nargs="*",
            help=(
                "question=choice pairs, e.g. neuro=no; repeat a question that allows several answers "
                "(contrast_risks=kidney contrast_risks=gad_reaction)"
            ),
        )
        parser.add_argument("--release", type=int, help="a published release version (default: latest)")

    def handle(self, *args: Any, topic: Any, answers: Any, release: Any, **options: Any) -> None:
        parsed: dict[str, str] = {}
        for pair in answers:
            question, sep, choice = pair.partition("=")
            if not sep or not question or not choice:
                raise CommandError(f"answer {pair!r} is not question=choice", returncode=2)
            # Repeated for a question with several answers; the engine refuses it for any other.
            parsed[question] = (
                f"{parsed[question]}{engine.ANSWER_SEPARATOR}{choice}" if question in parsed else choice
            )
        try:
            snapshot = snapshot_for(topic, release)
        except ReleaseNotFound as error:
            raise CommandError(str(error), returncode=2) from None
        try:
            recommendation = engine.recommend(snapshot, engine.upgrade_answers(snapshot, parsed))
        except engine.AnswerError as error:
            raise CommandError(str(error), returncode=2) from None
        self.stdout.write(
            json.dumps(engine.recommendation_json(recommendation), indent=2, ensure_ascii=False)
        )
