from django.contrib import admin
from django.http import HttpRequest

from images.compat.objectvision.models import Member


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    """ObjectVision's users: who they are and which tenant they act for. Passwords stay on the
    Django user (a hash, never shown here); users change theirs with PATCH /users/{id}."""

    list_display = ["email", "name", "client", "created_at"]
    list_select_related = ["client"]
    list_filter = ["client__plan"]
    search_fields = ["email"]
    autocomplete_fields = ["client"]
    fields = ["id", "email", "name", "client", "created_at", "updated_at"]
    readonly_fields = ["id", "email", "created_at", "updated_at"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a user comes with its Django user and password: signup makes both
