"""The baseline: a bare Flask app answering with bytes it holds in memory (run under gunicorn)."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response

app = Flask(__name__)
_BODY = Path(os.environ["BENCH_BODY"]).read_bytes() if "BENCH_BODY" in os.environ else b""
_TYPE = os.environ.get("BENCH_CONTENT_TYPE", "application/octet-stream")


@app.get("/feed")
def feed() -> Response:
    return Response(_BODY, content_type=_TYPE, headers={"Cache-Control": "public, max-age=300"})


@app.get("/small")
def small() -> Response:
    # the smallest response a Flask app can give: what a 304 is measured against
    return Response(b"", status=200)
