from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "decisions"

    def ready(self) -> None:
        # Imported for what importing does: the system checks register themselves, and the
        # warm-up listens for each release a process loads.
        from decisions.clinician import warmup  # noqa: F401
        from decisions.web import checks  # noqa: F401
