"""The OpenAPI 3 description of the public JSON API, served at /api/openapi.json.

One row per operation; tests/desktop/test_openapi.py walks the app's router and fails when a
row names a route that does not exist, or a public route of these resources has no row.
"""

from __future__ import annotations

import re
from typing import Any

# (method, path, tag, summary); path parameters as the router names them.
OPERATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("GET", "/api/me", "session", "Who is asking (user or token principal)"),
    ("GET", "/api/openapi.json", "session", "This description"),
    ("POST", "/api/customers", "customers", "Create a customer with phone numbers"),
    ("POST", "/api/customers/duplicates", "customers", "Possible duplicates of a new customer"),
    ("GET", "/api/customers/search", "customers", "Search customers in the caller's scope"),
    ("GET", "/api/customers/{customer_id}", "customers", "One customer (360 view)"),
    ("PATCH", "/api/customers/{customer_id}", "customers", "Change a customer's fields"),
    ("GET", "/api/customers/{customer_id}/history", "customers", "A customer's change history"),
    ("POST", "/api/customers/{customer_id}/merge", "customers", "Merge another customer in"),
    ("POST", "/api/customers/{customer_id}/unmerge", "customers", "Undo a merge"),
    ("POST", "/api/customers/{customer_id}/phones", "customers", "Add a phone number"),
    (
        "POST",
        "/api/customers/{customer_id}/phones/{phone_id}/reveal",
        "customers",
        "Reveal one masked number (audited)",
    ),
    ("PATCH", "/api/phones/{phone_id}", "customers", "Change a phone number"),
    ("DELETE", "/api/phones/{phone_id}", "customers", "Remove a phone number"),
    ("POST", "/api/customers/{customer_id}/contacts", "contacts", "Add a contact"),
    ("GET", "/api/contacts/{contact_id}", "contacts", "One contact"),
    ("PATCH", "/api/contacts/{contact_id}", "contacts", "Change a contact"),
    ("DELETE", "/api/contacts/{contact_id}", "contacts", "Remove a contact"),
    ("POST", "/api/contacts/{contact_id}/phones", "contacts", "Add a contact's phone number"),
    ("POST", "/api/customers/{customer_id}/vehicles", "vehicles", "Add a vehicle"),
    ("GET", "/api/vehicles/{vehicle_id}", "vehicles", "One vehicle"),
    ("PATCH", "/api/vehicles/{vehicle_id}", "vehicles", "Change a vehicle"),
    ("DELETE", "/api/vehicles/{vehicle_id}", "vehicles", "Remove a vehicle"),
    ("GET", "/api/calls/unprocessed", "calls", "Missed and unhandled calls"),
    ("GET", "/api/calls/callbacks", "calls", "Queue callbacks waiting"),
    ("GET", "/api/calls/by-linkedid/{linkedid}", "calls", "A call by its Asterisk Linkedid"),
    ("GET", "/api/calls/{call_id}", "calls", "One call"),
    ("POST", "/api/calls/{call_id}/called-back", "calls", "Mark a missed call called back"),
    ("POST", "/api/calls/{call_id}/customer", "calls", "Link the call to a customer"),
    ("POST", "/api/calls/{call_id}/service-request", "calls", "Open a request from the call"),
    ("POST", "/api/calls/{call_id}/survey", "calls", "Start the satisfaction survey"),
    ("POST", "/api/calls/{call_id}/wrap-up", "calls", "Finish wrap-up with a disposition"),
    ("POST", "/api/calls/{call_id}/wrap-up/extend", "calls", "Extend the wrap-up time"),
    ("POST", "/api/calls/{linkedid}/spy", "calls", "Listen, whisper or barge (supervisors)"),
    ("GET", "/api/recordings", "recordings", "Search recordings' metadata"),
    ("GET", "/api/recordings/{id}", "recordings", "One recording's metadata"),
    ("GET", "/api/recordings/by-call/{call_id}", "recordings", "A call's recordings"),
    ("POST", "/api/tickets", "service_requests", "Create a service request"),
    ("GET", "/api/tickets/review-queue", "service_requests", "Requests waiting for review"),
    ("GET", "/api/tickets/reports", "service_requests", "Request statistics"),
    ("GET", "/api/tickets/{id}", "service_requests", "One service request"),
    ("GET", "/api/tickets/{id}/timeline", "service_requests", "A request's timeline"),
    ("POST", "/api/tickets/{id}/actions", "service_requests", "Review, close, reopen..."),
    ("POST", "/api/tickets/{id}/dispatch", "service_requests", "Dispatch as a work order"),
    ("POST", "/api/tickets/{id}/offer", "service_requests", "Offer to several technicians"),
    ("POST", "/api/work-orders/{id}/reassign", "work_orders", "Give to another technician"),
    ("POST", "/api/work-orders/{id}/report", "work_orders", "Record the field report"),
)

ERRORS = {
    "401": "Not authenticated: no session or token, or a bad, revoked or expired token",
    "403": "Forbidden: role, IP lock, CSRF (sessions) or a service token writing",
    "404": "Not found, or outside the caller's data scope",
    "422": "Invalid input",
    "429": "Rate limit of the token reached; see Retry-After",
}


def _parameters(path: str) -> list[dict[str, Any]]:
    names = re.findall(r"\{([^}]+)\}", path)
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string" if name == "linkedid" else "integer"},
        }
        for name in names
    ]


def _operation(method: str, path: str, tag: str, summary: str) -> dict[str, Any]:
    error = {"$ref": "#/components/responses/Error"}
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path[5:]).strip('_')}",
        "responses": {"200": {"description": "OK", "content": _json({"type": "object"})}}
        | {status: error for status in ERRORS},
    }
    if parameters := _parameters(path):
        operation["parameters"] = parameters
    if method in ("POST", "PATCH"):
        operation["requestBody"] = {"content": _json({"type": "object"})}
    return operation


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def document(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, tag, summary in OPERATIONS:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, tag, summary)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hotline JSON API",
            "version": version,
            "description": "Tokens, scopes and rate limits: docs/api.md. Every error is "
            "{error_id, message}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"cookieAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API token"},
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "hotline_session",
                    "description": "Browser session; unsafe methods also need X-CSRF-Token",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error_id", "message"],
                    "properties": {"error_id": {"type": "string"}, "message": {"type": "string"}},
                }
            },
            "responses": {
                "Error": {
                    "description": "; ".join(f"{k}: {v}" for k, v in ERRORS.items()),
                    "content": _json({"$ref": "#/components/schemas/Error"}),
                }
            },
        },
    }
