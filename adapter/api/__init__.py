"""Flask blueprints: HTTP in, one service call, HTTP out."""
