"""gunicorn settings: threaded workers, so a long audio stream holds a thread, not a process.

(An ASGI server with Django 5.2's sync StreamingHttpResponse iterators would buffer whole bodies.)
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# gthread's timeout is the worker heartbeat, not a per-request limit: long streams are fine.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # empty: no access log
# Only trust X-Forwarded-* from the proxy on this host (see docs/deploy.md).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
