"""The portal's routes plus one that fails with secrets in its exception, for the error page test."""

from __future__ import annotations

from django.urls import include, path

from tests.security.test_secrets import LEAKY


def boom(request):
    raise RuntimeError(LEAKY)


urlpatterns = [path("boom/", boom), path("", include("portal.urls"))]
