"""Persistence: resources with all their versions, the search index, conditional-write locks."""
