from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "ai"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the ocr and vision pipeline steps.
        from ai import steps  # noqa: F401
        from images.library.selectors import searched_fields_add

        # The image lists' `?q=` finds words in the OCR text and the description too.
        searched_fields_add("ocr__text", "vision__description")
