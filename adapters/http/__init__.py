"""The HTTP API (litestar): `create_app(config)` builds it; `eportfolio serve` runs it."""
