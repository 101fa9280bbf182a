"""What a gateway is started with: the policy, where each of its models is served, limits, keys, cloud fallback."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

LOCALHOST = "127.0.0.1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UpstreamSpec(_Strict):
    """One OpenAI-compatible server that serves one of the policy's models."""

    name: str = Field(description="the policy's model name (model:quant@backend), what clients may ask for")
    url: str = Field(description="base URL ending in /v1")
    served_model: str = Field(description="the model id to put in requests to this server")
    api_key: str | None = Field(default=None, repr=False)


class Limits(_Strict):
    """Caps on what one request may ask for; over them a client gets 413 or 400, never a 500."""

    max_body_bytes: int = Field(default=1 << 20, gt=0)
    max_messages: int = Field(default=256, gt=0)
    max_tokens: int = Field(default=4096, gt=0, description="cap on max_tokens / max_completion_tokens")
    max_concurrency: int = Field(default=64, gt=0, description="requests in flight; one more gets 429")
    request_timeout_s: float = Field(default=300.0, gt=0, description="a whole request, first byte to last")
    first_token_timeout_s: float = Field(default=60.0, gt=0, description="until an upstream's first token")
    connect_timeout_s: float = Field(default=5.0, gt=0)


class CloudFallback(_Strict):
    """An OpenAI-compatible cloud endpoint, tried last, and only where the policy allows the cloud."""

    url: str
    model: str
    api_key: str | None = Field(default=None, repr=False)


class GatewaySettings(_Strict):
    policy: Path
    upstreams: list[UpstreamSpec]
    host: str = LOCALHOST
    port: int = Field(default=8080, ge=0, lt=65536)
    limits: Limits = Limits()
    cloud: CloudFallback | None = None
    log_content: bool = Field(default=False, description="log prompts and completions (off: never in logs)")
    reload_interval_s: float = Field(default=1.0, gt=0, description="how often the policy file is checked")
    health_interval_s: float = Field(default=5.0, gt=0)
