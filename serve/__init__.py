"""skedge.serve: a model behind a REST API (the ``serve`` extra: FastAPI, uvicorn, prometheus-client).

    from skedge.runtime import load
    from skedge.serve import create_app
    app = create_app(load("models/penguins/1.0.0"))       # any ASGI server can run it
    # or: skedge serve models/penguins/1.0.0 --port 8000

Routes: POST /predict, POST /explain (when the runtime explains), GET /health, GET /model, GET /metrics,
the OpenAPI document generated from the model's schema at /openapi.json and its form at /docs.
The runtime never imports this package.
"""

from ._app import DEFAULT_MAX_BODY, create_app, model_info
from ._run import ServeConfig, load_model, serve

__all__ = ["create_app", "serve", "ServeConfig", "load_model", "model_info", "DEFAULT_MAX_BODY"]
