from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The steps the insights step reads register first, so the registry lists them in the
        # order they run; then the insights step itself.
        from ai import steps as ai_steps  # noqa: F401
        from annotations import steps  # noqa: F401
