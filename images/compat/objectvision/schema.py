"""The bearer JWT in the OpenAPI description (drf-spectacular's simplejwt scheme)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class MemberJwtScheme(SimpleJWTScheme):
    target_class = "images.compat.objectvision.auth.MemberJwtAuthentication"
