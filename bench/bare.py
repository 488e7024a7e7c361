"""The app a user would write instead: bare FastAPI, one `async def` route returning a small JSON object.

Served by its own uvicorn process with the same command line as the bench app (bench.harness), so that the
ratio of any scenario to it is what Confrere costs over the framework, on the same machine in the same run.
"""

from __future__ import annotations

from fastapi import FastAPI

PATH = "/bare"


def create_bare_app() -> FastAPI:
    app = FastAPI()

    @app.get(PATH)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app
