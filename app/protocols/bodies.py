"""Request bodies in the API reference. Routes read their bodies themselves (for the JSON depth
limit, the streaming and chunked paths and each protocol's own error envelope), so FastAPI cannot
see them: each route names its wire model here and /openapi.json carries the model's schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_MODELS: dict[str, type[BaseModel]] = {}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    _MODELS[model.__name__] = model
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route whose JSON body is `model`."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _ref(model)}}}}


def form_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route reading a multipart form with `model`'s fields."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _ref(model)}}}}


def audio_body(media_types: tuple[str, ...], description: str) -> dict[str, Any]:
    """`openapi_extra` of a route whose body is the audio itself."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media: binary for media in media_types},
        }
    }


def openapi_with_bodies(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """A replacement for `app.openapi` that adds the named models to the components."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, model in _MODELS.items():
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[name] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    return build
