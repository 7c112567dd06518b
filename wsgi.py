"""WSGI entry point for `gunicorn wsgi:app`; the config is $FEEDHUB_CONFIG or config/feedhub.yaml."""

from feedhub.cli import configure_logging
from feedhub.config import config_path, load_config
from feedhub.errors import ConfigError
from feedhub.web import create_app

configure_logging()
try:
    app = create_app(load_config(config_path(None)))
except ConfigError as exc:
    raise SystemExit(f"feedhub: {exc}") from None
