"""Routes of the recordings app (see ARCHITECTURE.md, Contract)."""

from django.urls import path

from . import views

urlpatterns = [
    path("calls/", views.call_list, name="calls"),
    path("exports/", views.export_list, name="exports"),
]
