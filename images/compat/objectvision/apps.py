from django.apps import AppConfig


class ObjectVisionConfig(AppConfig):
    name = "images.compat.objectvision"
    label = "objectvision"
    verbose_name = "ObjectVision users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from images.compat.objectvision import schema  # noqa: F401  (registers the scheme)
