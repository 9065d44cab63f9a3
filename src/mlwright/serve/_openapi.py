"""The OpenAPI document carries each model's feature schema, so ``/docs`` is a usable form."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from mlwright.serve._auth import PUBLIC_PATHS
from mlwright.serve._experiment_routes import OUTCOME_BODY
from mlwright.serve._monitoring_routes import FEEDBACK_BODY
from mlwright.serve._oip import NUMERIC_TYPES, Datatype, InferenceRequest
from mlwright.serve._registry import FieldSpec, ServedModel

__all__ = ["model_components", "oip_request_schema", "record_schema", "server_openapi"]

DATATYPES: tuple[str, ...] = Datatype.__args__


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
    if model.target and model.target not in properties:
        # Records may carry the target (e.g. rows of the training file); it is ignored.
        properties[model.target] = {"title": model.target, "description": "The target: ignored."}
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


#: The body of every refused request (4xx): one paragraph, then one problem per field and row.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "field": {"type": ["string", "null"], "description": "Column or request part."},
        "row": {"type": ["integer", "null"], "description": "Row of the request, if any."},
        "kind": {"type": "string", "description": "What is wrong, e.g. 'wrong_type'."},
        "message": {"type": "string"},
        "value": {"description": "The refused value (shortened)."},
    },
    "required": ["field", "row", "kind", "message"],
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "What was wrong, where, and the fix."},
        "detail": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
    },
    "required": ["error"],
}
_ERROR_TEXT = {
    400: "Malformed request: the body is not JSON, or (inference) does not match the model",
    401: "Missing or wrong bearer token",
    404: "Unknown model, version or experiment",
    409: "The server's state does not allow it (no prediction log, no single experiment)",
    413: "Body larger than --max-body-bytes",
    415: "Body is not application/json",
    422: "The body or a parameter does not match this schema (field-level detail)",
    503: "Not ready, or the prediction log cannot be written",
}
#: Error statuses per operation, beyond 401 (every non-public path when a token is set).
_OPERATION_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    # 503: a durable prediction log could not take the prediction (serve --log-durable).
    ("post", "/predict"): (400, 404, 413, 415, 422, 503),
    ("post", "/models/{name}/predict"): (400, 404, 413, 415, 422, 503),
    ("post", "/v2/models/{name}/infer"): (400, 404, 413, 415, 503),
    ("post", "/v2/models/{name}/versions/{version}/infer"): (400, 404, 413, 415, 503),
    # The same operations under one model's concrete path (several models served).
    ("post", "predict"): (400, 413, 415, 422, 503),
    ("post", "infer"): (400, 413, 415, 503),
    ("get", "/v2/models/{name}"): (404,),
    ("get", "/v2/models/{name}/versions/{version}"): (404,),
    ("get", "/v2/models/{name}/ready"): (404,),
    ("get", "/v2/models/{name}/versions/{version}/ready"): (404,),
    ("get", "/v2/health/ready"): (503,),
    ("post", "/feedback"): (400, 409, 413, 422, 503),
    ("post", "/outcome"): (400, 404, 409, 413, 422),
    ("get", "/dashboard/data"): (422,),
}
#: The Open Inference Protocol's rules that JSON Schema cannot state; a request breaking one
#: is answered 400 with the field-level detail (docs/serve.md).
OIP_CROSS_FIELD_RULES = (
    "each tensor's data holds exactly the product of its shape elements",
    "every tensor has the same number of rows",
    "every column the model needs is sent (see the model metadata)",
    "each value is valid for its column (as in the record schema of POST /predict)",
)


def _oip_tensor_schemas(model: ServedModel) -> list[dict[str, Any]]:
    """One alternative per accepted input tensor of ``model`` (the pandas-codec convention)."""
    common = {
        "parameters": {
            "type": ["object", "null"],
            "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
        },
        "data": {
            "type": ["array", "null"],
            "description": "Flat or nested; null with binary data.",
        },
    }
    column_shape = {
        "type": "array",
        "prefixItems": [{"type": "integer", "minimum": 1}, {"const": 1}],
        "minItems": 1,
        "maxItems": 2,
        "description": "[N] or [N, 1], N >= 1 rows.",
    }
    alternatives = []
    for spec in model.fields:
        text = spec.kind in ("string", "datetime")
        alternatives.append(
            {
                "type": "object",
                "title": spec.name,
                "properties": {
                    "name": {"const": spec.name},
                    "datatype": {"enum": ["BYTES"] if text else list(DATATYPES)},
                    "shape": column_shape,
                    **common,
                },
                "required": ["name", "shape", "datatype"],
            }
        )
    if model.target:
        alternatives.append(
            {
                "type": "object",
                "title": f"{model.target} (the target: ignored)",
                "properties": {
                    "name": {"const": model.target},
                    "datatype": {"enum": list(DATATYPES)},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    **common,
                },
                "required": ["name", "shape", "datatype"],
            }
        )
    if model.all_numeric and len(model.feature_names) > 1:
        alternatives.append(
            {
                "type": "object",
                "title": "all features as one [N, F] matrix",
                "properties": {
                    "name": {"type": "string"},
                    "datatype": {"enum": sorted(NUMERIC_TYPES)},
                    "shape": {
                        "type": "array",
                        "prefixItems": [
                            {"type": "integer", "minimum": 1},
                            {"const": len(model.feature_names)},
                        ],
                        "minItems": 2,
                        "maxItems": 2,
                    },
                    **common,
                },
                "required": ["name", "shape", "datatype"],
            }
        )
    return alternatives


def oip_request_schema(model: ServedModel) -> dict[str, Any]:
    """``POST /v2/models/{name}/infer`` body for ``model``: its tensors by name and datatype."""
    outputs = ["predict"] if model.task == "regression" else ["predict", "predict_proba"]
    return {
        "title": f"{model.name} inference request",
        "type": "object",
        "description": (
            f"Open Inference Protocol request for '{model.name}': one tensor per column. "
            "Also required, and checked by the server (400): "
            + "; ".join(OIP_CROSS_FIELD_RULES)
            + "."
        ),
        "properties": {
            "id": {"type": ["string", "null"]},
            "parameters": {"type": ["object", "null"]},
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": _oip_tensor_schemas(model)},
            },
            "outputs": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"enum": outputs},
                        "parameters": {"type": ["object", "null"]},
                    },
                    "required": ["name"],
                },
            },
        },
        "required": ["inputs"],
        "x-mlwright-cross-field-rules": list(OIP_CROSS_FIELD_RULES),
    }


def _adapter_component(components: dict[str, Any], name: str, adapter: TypeAdapter) -> None:
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    for key, value in schema.pop("$defs", {}).items():
        components.setdefault(key, value)
    components[name] = schema


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: Operations whose body depends on the model in the path.
_MODEL_BODY_PATHS = (
    "/models/{name}/predict",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
)


def _model_body_operations(
    paths: dict[str, Any], models: list[ServedModel], ref: Callable[[str], dict[str, str]]
) -> None:
    """Give each model-specific operation its model's body. With several models, a body is
    valid for one model only, which a templated path cannot say: the operation is listed once
    per model under its concrete path (``/models/credit/predict``), each with its own body."""

    def fill(operation: dict[str, Any], path: str, model: ServedModel) -> None:
        prefix = component_prefix(model)
        if path.startswith("/models/"):
            operation["requestBody"] = _json_body(ref(f"{prefix}PredictRequest"))
            operation["responses"]["200"] = _json_answer(
                "Predictions", ref(f"{prefix}PredictResponse")
            )
        else:
            operation["requestBody"] = _json_body(ref(f"{prefix}InferenceRequest"))

    for path in _MODEL_BODY_PATHS:
        item = paths.get(path)
        if item is None or "post" not in item or not models:
            continue
        if len(models) == 1:
            fill(item["post"], path, models[0])
            continue
        del paths[path]
        for model in models:
            concrete = path.replace("{name}", model.name).replace("{version}", model.version)
            operation = copy.deepcopy(item["post"])
            operation["parameters"] = [
                parameter
                for parameter in operation.get("parameters", [])
                if parameter.get("name") not in ("name", "version")
            ]
            operation["operationId"] = f"{operation.get('operationId', 'post')}_{model.name}"
            operation["summary"] = f"{operation.get('summary', '')} ({model.name})".strip()
            fill(operation, path, model)
            paths[concrete] = {"post": operation}


def server_openapi(app: Any, state: Any) -> dict[str, Any]:
    """The server's OpenAPI document: each model's request and response schemas, every error
    status each operation can answer with and its body, and bearer security when a token is
    set (cached on the app)."""
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
    # FastAPI's own 422 bodies are replaced by ours (the exception handlers answer with Error).
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    components["Error"] = ERROR_SCHEMA
    # The generic tensor request (the routes' default; each model's own replaces it below).
    _adapter_component(components, "InferenceRequest", TypeAdapter(InferenceRequest))
    _adapter_component(components, "FeedbackBody", FEEDBACK_BODY)
    _adapter_component(components, "OutcomeBody", OUTCOME_BODY)
    models = registry.models()
    for model in models:
        components.update(model_components(model))
        components[f"{component_prefix(model)}InferenceRequest"] = oip_request_schema(model)
    default = registry.get(None)
    paths = document.get("paths", {})

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def operation(method: str, path: str) -> dict[str, Any] | None:
        return paths.get(path, {}).get(method)

    if default is not None and (predict := operation("post", "/predict")) is not None:
        prefix = component_prefix(default)
        predict["requestBody"] = _json_body(ref(f"{prefix}PredictRequest"))
        predict["responses"] = {"200": _json_answer("Predictions", ref(f"{prefix}PredictResponse"))}
        predict["summary"] = f"Predict with '{default.name}' (version {default.version})"
    _model_body_operations(paths, models, ref)
    if (feedback := operation("post", "/feedback")) is not None:
        feedback["requestBody"] = _json_body(ref("FeedbackBody"))
    if (outcome := operation("post", "/outcome")) is not None:
        outcome["requestBody"] = _json_body(ref("OutcomeBody"))
    for path, item in paths.items():
        for method, op in item.items():
            for parameter in op.get("parameters", []):
                if not path.startswith(("/v2/models/{name}", "/models/{name}")):
                    continue
                if parameter.get("name") == "name":
                    parameter["schema"] = {"type": "string", "enum": [m.name for m in models]}
                elif parameter.get("name") == "version":
                    parameter["schema"] = {
                        "type": "string",
                        "enum": sorted({m.version for m in models}),
                    }
            responses = op.setdefault("responses", {})
            statuses = list(
                _OPERATION_ERRORS.get((method, path))
                or _OPERATION_ERRORS.get((method, path.rsplit("/", 1)[-1]), ())
            )
            if settings.token and path not in PUBLIC_PATHS:
                statuses.append(401)
                op["security"] = [{"bearer": []}]
            responses.pop("422", None)
            for status in sorted(statuses):
                responses[str(status)] = _json_answer(_ERROR_TEXT[status], ref("Error"))
    document.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    app.openapi_schema = document
    return document
