"""The admin site, with the operator's dashboard on its front page."""

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from imago_site import dashboard


class ImagoAdminSite(admin.AdminSite):
    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        return super().index(request, {"dashboard": dashboard.figures(), **(extra_context or {})})
