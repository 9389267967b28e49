from django.apps import AppConfig


class ObjectVisionConfig(AppConfig):
    name = "images.compat.objectvision"
    label = "objectvision"
    verbose_name = "ObjectVision users"
    default_auto_field = "django.db.models.BigAutoField"
