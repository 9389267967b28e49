from django.urls import path

from images.compat.objectvision import api

urlpatterns = [
    path("auth/signup", api.SignupView.as_view(), name="ov-signup"),
    path("auth/login", api.LoginView.as_view(), name="ov-login"),
    path("auth/refresh", api.RefreshView.as_view(), name="ov-refresh"),
    path("auth/logout", api.LogoutView.as_view(), name="ov-logout"),
    path("users/get-profile", api.ProfileView.as_view(), name="ov-profile"),
    path("users/<uuid:user_id>", api.UserView.as_view(), name="ov-user"),
]
