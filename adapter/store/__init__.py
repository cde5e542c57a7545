"""Persistence: resources with every version, the search index, conditional-write locks (SQLite or PostgreSQL)."""
