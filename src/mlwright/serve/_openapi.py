"""The OpenAPI document carries each model's feature schema, so ``/docs`` is a usable form."""

from __future__ import annotations

from typing import Any

from fastapi.openapi.utils import get_openapi

from mlwright.serve._auth import PUBLIC_PATHS
from mlwright.serve._oip import InferenceRequest
from mlwright.serve._registry import FieldSpec, ServedModel

__all__ = ["model_components", "record_schema"]


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    base: dict[str, Any]
    if spec.kind == "number":
        base = {"type": "number"}
        if spec.integer:
            base["type"] = "integer" if spec.categories is None else "number"
    elif spec.kind == "boolean":
        base = {"type": "boolean"}
    elif spec.kind == "datetime":
        base = {"type": "string", "format": "date-time"}
    else:
        base = {"type": "string"}
    description = [f"{spec.semantic_type} column"]
    if spec.categories:
        values = list(spec.categories)
        if spec.kind == "string":
            values = [str(v) for v in values]
        if spec.reject_unseen:
            base["enum"] = values
        else:
            base["examples"] = values[:20]
            description.append(
                "categories seen in training: "
                + ", ".join(map(str, values[:20]))
                + (", ..." if len(values) > 20 else "")
                + " (others are accepted and treated as unseen)"
            )
    if spec.minimum is not None and spec.maximum is not None:
        description.append(f"training range {spec.minimum:g} to {spec.maximum:g}")
    if spec.nullable:
        description.append("may be null (missing)" if spec.required is False else "")
    schema: dict[str, Any] = {
        "title": spec.name,
        "description": "; ".join(part for part in description if part) + ".",
    }
    if spec.nullable:
        schema["anyOf"] = [base, {"type": "null"}]
    else:
        schema.update(base)
    return schema


def _example_value(spec: FieldSpec) -> Any:
    if spec.categories:
        value = spec.categories[0]
        return str(value) if spec.kind == "string" else value
    if spec.kind == "number":
        if spec.minimum is not None and spec.maximum is not None:
            middle = (spec.minimum + spec.maximum) / 2
            return round(middle) if spec.integer else round(middle, 3)
        return 0
    if spec.kind == "boolean":
        return False
    if spec.kind == "datetime":
        return "2024-01-01T00:00:00"
    return ""


def record_schema(model: ServedModel) -> dict[str, Any]:
    """JSON schema of one record (field -> value) for ``model``."""
    properties = {spec.name: _field_schema(spec) for spec in model.fields}
    required = [spec.name for spec in model.fields if spec.required]
    return {
        "title": f"{model.name} record",
        "type": "object",
        "description": (
            f"One row for model '{model.name}' (version {model.version}, {model.task}). "
            "Unknown fields are refused."
        ),
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _component(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "-").split("-")) or "Model"


def model_components(model: ServedModel) -> dict[str, dict[str, Any]]:
    """Schemas ``<Name>Record``, ``<Name>PredictRequest``, ``<Name>PredictResponse``."""
    prefix = _component(model.name)
    example = {spec.name: _example_value(spec) for spec in model.fields if spec.required}
    label_schema: dict[str, Any]
    if model.task == "regression":
        label_schema = {"type": "number"}
    else:
        classes = list(model.classes or [])
        label_schema = {
            "enum": [c if isinstance(c, (int, float, bool)) else str(c) for c in classes]
        }
    response: dict[str, Any] = {
        "title": f"{model.name} predictions",
        "type": "object",
        "properties": {
            "predictions": {"type": "array", "items": label_schema},
            "model": {"type": "string"},
            "version": {"type": "string"},
            "request_id": {"type": "string"},
        },
        "required": ["predictions", "model", "version", "request_id"],
    }
    if model.task != "regression":
        response["properties"]["probabilities"] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {str(c): {"type": "number"} for c in model.classes or []},
            },
        }
    return {
        f"{prefix}Record": record_schema(model),
        f"{prefix}PredictRequest": {
            "title": f"{model.name} prediction request",
            "type": "object",
            "properties": {
                "records": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": f"#/components/schemas/{prefix}Record"},
                }
            },
            "required": ["records"],
            "additionalProperties": False,
            "example": {"records": [example]},
        },
        f"{prefix}PredictResponse": response,
    }


def component_prefix(model: ServedModel) -> str:
    return _component(model.name)


def server_openapi(app: Any, state: Any) -> dict[str, Any]:
    """The server's OpenAPI document: each model's request and response schemas, the
    error bodies, and bearer security when a token is set (cached on the app)."""
    registry, settings = state.registry, state.settings
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["InferenceRequest"] = InferenceRequest.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for key, value in components["InferenceRequest"].pop("$defs", {}).items():
        components.setdefault(key, value)
    error_schema = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "detail": {"type": "array", "items": {"type": "object"}},
        },
    }
    components["Error"] = error_schema
    models = registry.models()
    for model in models:
        components.update(model_components(model))
    default = registry.get(None)
    paths = document.get("paths", {})
    errors = {
        str(code): {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code, text in (
            (400, "Malformed JSON"),
            (401, "Missing or wrong token"),
            (404, "Unknown model"),
            (413, "Body too large"),
            (422, "Invalid records (field-level detail)"),
        )
    }

    def body(model: ServedModel) -> dict[str, Any]:
        prefix = component_prefix(model)
        return {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{prefix}PredictRequest"}
                }
            },
        }

    if default is not None and "/predict" in paths:
        operation = paths["/predict"]["post"]
        operation["requestBody"] = body(default)
        prefix = component_prefix(default)
        operation["responses"] = {
            "200": {
                "description": "Predictions",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{prefix}PredictResponse"}
                    }
                },
            },
            **errors,
        }
        operation["summary"] = f"Predict with '{default.name}' (version {default.version})"
    if "/models/{name}/predict" in paths:
        operation = paths["/models/{name}/predict"]["post"]
        for parameter in operation.get("parameters", []):
            if parameter.get("name") == "name":
                parameter["schema"] = {"type": "string", "enum": [m.name for m in models]}
        refs = [
            {"$ref": f"#/components/schemas/{component_prefix(m)}PredictRequest"} for m in models
        ]
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}
            },
        }
        operation["responses"] = {"200": {"description": "Predictions"}, **errors}
    for path, item in paths.items():
        if path.startswith("/v2/models/{name}"):
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("name") == "name":
                        parameter["schema"] = {
                            "type": "string",
                            "enum": [m.name for m in models],
                        }
                    elif parameter.get("name") == "version":
                        parameter["schema"] = {
                            "type": "string",
                            "enum": sorted({m.version for m in models}),
                        }
    document.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    if settings.token:
        for path, item in paths.items():
            if path not in PUBLIC_PATHS:
                for operation in item.values():
                    operation["security"] = [{"bearer": []}]
    app.openapi_schema = document
    return document
