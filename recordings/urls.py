"""Routes of the recordings app (see ARCHITECTURE.md, Contract)."""

from django.urls import path

from . import views, views_audio, views_exports, views_jobs, views_search

urlpatterns = [
    path("calls/", views_search.call_list, name="calls"),
    path("calls/export.csv", views_exports.results_csv, name="calls_csv"),
    path("calls/<int:pk>/", views.call_detail, name="call_detail"),
    path("recordings/<int:pk>/audio", views_audio.recording_audio, name="recording_audio"),
    path("recordings/<int:pk>/download", views_audio.recording_download, name="recording_download"),
    path("exports/", views_exports.export_list, name="exports"),
    path("exports/<int:pk>/", views_exports.export_detail, name="export_detail"),
    path("exports/<int:pk>/download", views_exports.export_download, name="export_download"),
    path("jobs/<int:pk>/", views_jobs.job_detail, name="job_detail"),
]
