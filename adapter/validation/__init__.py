"""Validation of resources before they are stored."""
