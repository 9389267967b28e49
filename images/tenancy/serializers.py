"""Tenants as the API shows them (to callers with the `admin` scope)."""

from rest_framework import serializers

from images.models import ALL_SCOPES, Client


class ClientSerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_SCOPES), required=False
    )
    key_prefixes = serializers.SerializerMethodField()

    class Meta:
        model = Client
        fields = [
            "id",
            "name",
            "slug",
            "plan",
            "scopes",
            "storage_quota_bytes",
            "image_quota",
            "rate_limit",
            "is_active",
            "key_prefixes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "is_active", "created_at", "updated_at"]
        extra_kwargs = {"slug": {"required": False}}

    def get_key_prefixes(self, client: Client) -> list[str]:
        return [key.prefix for key in client.api_keys.all() if key.revoked_at is None]


class ClientCreatedSerializer(ClientSerializer):
    key = serializers.CharField(help_text="The API key, shown only once.")

    class Meta(ClientSerializer.Meta):
        fields = [*ClientSerializer.Meta.fields, "key"]


class KeySerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The new API key, shown only once.")
    prefix = serializers.CharField()
