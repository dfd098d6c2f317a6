"""Root URL configuration."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from recordings.views import healthz

admin.site.site_header = "Recording Portal administration"
admin.site.site_title = "Recording Portal admin"
admin.site.index_title = "Accounts, calls, jobs and the audit log"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="calls", permanent=False)),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("recordings.urls")),
]
