"""Use cases: one function per client action, each owning its unit of work."""
