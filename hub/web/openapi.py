"""The OpenAPI 3 document of the JSON API, built from the declared route table."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hub.security.roles import Permission, Scope
from hub.web.route_table import Kind, Route

_PARAM = re.compile(r"\{(\w+)\}")


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.kind is not Kind.API:
            continue
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "x-permission": route.permission.value,
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "Invalid input"},
                "401": {"description": "Not authenticated"},
                "403": {"description": "Not permitted"},
                "404": {"description": "Not found (or not yours)"},
            },
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
            for name in _PARAM.findall(route.path)
        ]
        if params:
            operation["parameters"] = params
        if route.permission is Permission.PUBLIC:
            operation["security"] = []
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hub API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API token; scopes: " + ", ".join(s.value for s in Scope),
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"},
            }
        },
        "security": [{"bearer": []}, {"session": []}],
    }
