"""This machine's ceiling for bench_likes.py: Flask's smallest JSON endpoint and nothing else.

The issue's figures were measured on a machine where this served about 2,700 req/s on one sync
gunicorn worker; the benchmark runs it first and scales the absolute targets by what it serves here.
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def ok():
    """Answer a constant JSON document."""
    return jsonify(status="ok")
