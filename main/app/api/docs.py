"""Swagger UI page served from the assets bundled in flask-swagger-ui (no CDN needed)."""

import os

DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>main service API</title>
  <link rel="stylesheet" href="/flask/api/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <noscript><a href="/flask/api/openapi.json">OpenAPI document</a></noscript>
  <script src="/flask/api/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/flask/api/openapi.json", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
"""


def swagger_ui_dist():
    """Return the directory of the Swagger UI bundle shipped by flask-swagger-ui."""
    import flask_swagger_ui

    return os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")
