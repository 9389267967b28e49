from django.urls import path

from images.compat.objectvision import health

urlpatterns = [
    path("database", health.database, name="ov-health-database"),
    path("redis", health.redis, name="ov-health-redis"),
    path("celery", health.celery, name="ov-health-celery"),
]
