"""`gunicorn wsgi:app` from the source tree: the app lives in feedhub.wsgi."""

from feedhub.wsgi import app as app
