import PIL.Image
import pillow_heif
from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class ImagesConfig(AppConfig):
    name = "images"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        pillow_heif.register_heif_opener()
        # Our own pixel limit is checked at upload; keep Pillow's bomb guard in line with it.
        PIL.Image.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
        # Imported for their side effects: pipeline steps and OpenAPI extensions register.
        from images.detection import services as detection  # noqa: F401
        from images.library import steps  # noqa: F401
        from images.plates import steps as plate_steps  # noqa: F401
        from images.tenancy import schema  # noqa: F401

        post_migrate.connect(_register_models, sender=self)


def _register_models(**kwargs: object) -> None:
    """Built-in models join the registry (shown in the admin) once their tables exist."""
    from images.detection.services import models_sync

    models_sync()
