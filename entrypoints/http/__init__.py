"""The Litestar HTTP entrypoint: JSON API (and, when present, the web pages)."""
