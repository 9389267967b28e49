import uuid

from django.conf import settings
from django.db import models

from images.models import Client


class Member(models.Model):
    """An ObjectVision user: a Django user who logs in with an email and a password and acts
    for one tenant, with its scopes. The user's username is this id (a token's `sub`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="member"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="members")
    email = models.EmailField(unique=True, help_text="Lower-cased: the login name.")
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return f"{self.email} ({self.client})"
