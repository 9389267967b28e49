"""OpenAPI descriptions for what drf-spectacular cannot infer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "images.tenancy.auth.ApiKeyAuthentication"
    name = ["TokenAuth", "ApiKeyHeader"]

    def get_security_requirement(self, auto_schema: object) -> list[dict]:
        # Either header will do: two requirements (OR), not one requirement naming both (AND).
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema: object) -> list[dict]:
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Token <key>`",
            },
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]
