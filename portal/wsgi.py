"""WSGI entry point: `gunicorn portal.wsgi` (threaded workers, see gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

django_application = get_wsgi_application()


def application(environ, start_response):
    # The server's response object (gunicorn's start_response is its bound method): the audio route writes long
    # bodies to its socket in the kernel through it (recordings/zerocopy.py checks what it is before using it).
    environ["portal.server_response"] = getattr(start_response, "__self__", None)
    return django_application(environ, start_response)
