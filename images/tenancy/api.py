"""GET/POST/PATCH/DELETE /api/v1/clients/: tenants, for callers with the `admin` scope."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from images.models import Client, Scope
from images.tenancy import services
from images.tenancy.auth import key_prefix
from images.tenancy.serializers import ClientCreatedSerializer, ClientSerializer, KeySerializer


class ClientViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Tenants, for callers with the `admin` scope."""

    required_scopes = [Scope.ADMIN]
    serializer_class = ClientSerializer
    queryset = Client.objects.prefetch_related("api_keys").order_by("id")
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(responses={201: ClientCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = ClientSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        client, key = services.client_create(
            name=data.pop("name"),
            slug=data.pop("slug", ""),
            plan=data.pop("plan", "free"),
            scopes=data.pop("scopes", None),
            **data,
        )
        body = {**ClientSerializer(client).data, "key": key}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ClientSerializer})
    def destroy(self, request: Request, pk: str) -> Response:
        client = self.get_object()
        services.client_deactivate(client=client)
        return Response(ClientSerializer(client).data)

    @extend_schema(request=None, responses=KeySerializer)
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request: Request, pk: str) -> Response:
        key = services.client_rotate_key(client=self.get_object())
        return Response({"key": key, "prefix": key_prefix(key)})
