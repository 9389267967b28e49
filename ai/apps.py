from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "ai"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the ocr and vision pipeline steps.
        from ai import steps  # noqa: F401
