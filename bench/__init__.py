"""Benchmarks of cart-adapter over HTTP: transaction ingest and Task polling, each beside its floor."""
