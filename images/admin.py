"""The admin of each room of the app: importing them registers their pages."""

from images.detection import admin as detection_admin
from images.library import admin as library_admin
from images.plates import admin as plates_admin
from images.tenancy import admin as tenancy_admin

__all__ = ["detection_admin", "library_admin", "plates_admin", "tenancy_admin"]
