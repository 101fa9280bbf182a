"""Prometheus metrics of the gateway (``GET /metrics``), defined once here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """One registry per gateway, so tests and several gateways in a process never share counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lalo_gateway_requests", "Requests answered, by endpoint, model that served them and HTTP status",
            ["endpoint", "model", "status"], registry=r,
        )  # fmt: skip
        self.routes = Counter(
            "lalo_gateway_routes", "Requests routed by the policy (model auto), by the model chosen", ["model"],
            registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "lalo_gateway_errors", "Failures by kind (upstream_down, mid_stream, timeout, rejected)", ["kind"],
            registry=r,
        )  # fmt: skip
        self.fallbacks = Counter(
            "lalo_gateway_fallbacks", "Requests moved from a failed model to the next", ["from_model", "to_model"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "lalo_gateway_request_seconds", "Request time, arrival to last byte", ["model"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "lalo_gateway_first_event_seconds", "Streaming: arrival to the first event relayed", ["model"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "lalo_gateway_tokens", "Tokens by model and direction (from the upstream's usage)", ["model", "direction"],
            registry=r,
        )  # fmt: skip
        self.stream_events = Counter(
            "lalo_gateway_stream_events", "Stream events relayed (about one per token on llama.cpp and vLLM)",
            ["model"], registry=r,
        )  # fmt: skip
        self.in_flight = Gauge("lalo_gateway_in_flight", "Requests in flight", registry=r)
        self.upstream_up = Gauge("lalo_gateway_upstream_up", "1 if the last health check passed", ["model"], registry=r)
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self.policy_reloads = Counter(
            "lalo_gateway_policy_reloads", "Policy file reloads, by outcome", ["outcome"], registry=r
        )

    # Children by label values, looked up once: prometheus_client's labels() costs a lock and a dict per call.
    def request(self, endpoint: str, model: str, status: int) -> Counter:
        key = (endpoint, model, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(endpoint, model, str(status))
        return child

    def latency_of(self, model: str) -> Histogram:
        child = self._latency.get(model)
        if child is None:
            child = self._latency[model] = self.latency.labels(model)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
