"""Logging set-up, done once before the app exists; log lines carry ids, never patient data."""

from __future__ import annotations

import logging
import logging.config
import os


def configure_logging(level: str | None = None) -> None:
    """Console logging at CART_ADAPTER_LOG_LEVEL, unless the host (a test runner, an embedding app)
    has configured logging already: its handlers are kept."""
    if logging.getLogger().handlers:
        return
    level = (level or os.environ.get("CART_ADAPTER_LOG_LEVEL", "INFO")).upper()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"level": level, "handlers": ["console"]},
            # At DEBUG these would print SQL parameters and request lines: resource content, patient data.
            "loggers": {
                "sqlalchemy": {"level": "WARNING"},
                "werkzeug": {"level": "WARNING"},
                "gunicorn.access": {"level": "WARNING"},
            },
        }
    )
