"""The HTTP surface: the OpenAI-compatible Videos API under `/v1`, health and metrics.

`moviola.api.app.create_app(settings)` builds the application; `moviola serve` runs it.
"""
