from django.contrib.admin.apps import AdminConfig


class ImagoAdminConfig(AdminConfig):
    """django.contrib.admin, whose site is ours: its front page is the operator's dashboard."""

    default_site = "imago_site.admin.ImagoAdminSite"
