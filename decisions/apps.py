from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "decisions"

    def ready(self) -> None:
        from decisions import (
            checks,  # noqa: F401  (registers the system checks)
            warmup,  # noqa: F401  (warms each release a process loads)
        )
