"""WSGI entry point for gunicorn: `gunicorn adapter.wsgi:app`."""

from adapter import create_app
from adapter.logs import configure_logging

configure_logging()
app = create_app()
