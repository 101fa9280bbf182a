"""The request bodies the gateway reads, how their errors read to a client, and how they appear in /openapi.json."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lalo_bench.gateway.errors import GatewayError

AUTO = "auto"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_Open):
    """The fields the gateway reads; every other field passes through to the model's server untouched."""

    model: str = Field(default=AUTO, description="'auto' (routed by the policy) or one of GET /v1/models")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None


class CompletionRequest(_Open):
    model: str = Field(default=AUTO)
    prompt: str | list[str] | list[int] | list[list[int]] = Field(description="text, texts, or token ids")
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)


ENDPOINTS: dict[str, tuple[str, type[BaseModel], str]] = {
    "/v1/chat/completions": ("/chat/completions", ChatRequest, "Chat completion, routed by the policy"),
    "/v1/completions": ("/completions", CompletionRequest, "Text completion, routed by the policy"),
}


def parse(model: type[BaseModel], raw: bytes) -> Any:
    """Validate a body in one pass (pydantic's JSON parser); every failure is a 400 naming the field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid(exc.errors()) from None


def invalid(errors: list[Any]) -> GatewayError:
    first = errors[0] if errors else {}
    loc = tuple(p for p in first.get("loc", ()) if p != "body")
    where = ".".join(str(p) for p in loc)
    message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(first.get("msg", "invalid request"))
    if first.get("type") == "json_invalid":
        message, where = "request body is not valid JSON", ""
    elif not loc:
        message = "request body must be a JSON object"
    return GatewayError(400, message, "invalid_request_error", param=where or None)


def add_to_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """The POST endpoints, served outside FastAPI's router for speed, described from the same models."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error = {"description": "an OpenAI-style error: {'error': {'message', 'type', 'param', 'code'}}"}
    for path, (_, model, summary) in ENDPOINTS.items():
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
        schema.setdefault("paths", {})[path] = {
            "post": {
                "summary": summary,
                "operationId": model.__name__,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
                },
                "responses": {
                    "200": {"description": "the model's answer (JSON, or server-sent events when stream is true)"},
                    **{code: error for code in ("400", "401", "404", "413", "429", "502", "503")},
                },
            }
        }
    return schema
