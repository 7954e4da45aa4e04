"""/api/v1/docs: the OpenAPI document as a plain page, rendered here (no CDN, no script)."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("api-doc-page", __name__)

METHODS = ("get", "post", "put", "patch", "delete")


@bp.get("/api/v1/docs")
def page():
    api = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    spec = api.spec.to_dict()
    operations = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                operations.append({
                    "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": op.get("parameters", []) + item.get("parameters", []),
                    "body": op.get("requestBody"),
                    "responses": op.get("responses", {}), "tags": op.get("tags", []),
                })
    return render_template("api/docs.html", spec=spec, operations=operations,
                           schemas=spec.get("components", {}).get("schemas", {}))
