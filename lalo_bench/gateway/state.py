"""A running gateway's state: the policy router (swapped whole on reload), the upstreams, the counters.

Reload never drops a request: a request takes the router it will use once, at its start, and keeps it; a new
policy is loaded and checked completely before it replaces the old one, and a bad file leaves the old in place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from lalo_bench.errors import LaloError
from lalo_bench.gateway.access import AccessLog
from lalo_bench.gateway.metrics import Metrics
from lalo_bench.gateway.settings import GatewaySettings
from lalo_bench.gateway.upstream import Upstream, cloud_upstream
from lalo_bench.routing.runtime import PolicyRouter

log = logging.getLogger("lalo_bench.gateway")


@dataclass(frozen=True)
class Loaded:
    """One version of the policy, with what it may fall back to."""

    router: PolicyRouter
    sha256: str
    cloud_allowed: bool


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(settings: GatewaySettings) -> Loaded:
    """Load and check the policy file: every model it names must have an upstream."""
    router = PolicyRouter.from_file(settings.policy)
    known = {u.name for u in settings.upstreams}
    missing = [m.name for m in router.policy.models if m.name not in known]
    if missing:
        raise LaloError(
            f"{settings.policy}: no upstream serves {', '.join(missing)}; give --upstream NAME=URL for each"
        )
    router.route([{"role": "user", "content": "warm-up"}])  # loads the embedding model now, not on a request
    return Loaded(router, _sha256(settings.policy), router.policy.cloud_fallback)


class GatewayState:
    def __init__(self, settings: GatewaySettings, key: str, loaded: Loaded) -> None:
        self.settings = settings
        self.key = key
        self.loaded = loaded
        self.metrics = Metrics()
        self.access = AccessLog()
        self.in_flight = 0
        self.session: aiohttp.ClientSession | None = None
        self.upstreams: dict[str, Upstream] = {}
        self.cloud: Upstream | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        limits = self.settings.limits
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        self.upstreams = {u.name: Upstream(u, self.session, limits) for u in self.settings.upstreams}
        if self.settings.cloud is not None:
            self.cloud = cloud_upstream(self.settings.cloud, self.session, limits)
        await self.check_health()
        self._tasks = [
            asyncio.create_task(self._every(self.settings.reload_interval_s, self.reload_if_changed)),
            asyncio.create_task(self._every(self.settings.health_interval_s, self.check_health)),
            asyncio.create_task(self._every(0.25, self._flush_access)),
        ]

    async def _flush_access(self) -> None:
        self.access.flush()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.access.flush()
        for upstream in [*self.upstreams.values(), *([self.cloud] if self.cloud else [])]:
            await upstream.pool.close()
        if self.session is not None:
            await self.session.close()

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a background check must never stop the gateway
                log.exception("background job failed")

    async def check_health(self) -> None:
        results = await asyncio.gather(*(u.check() for u in self.upstreams.values()))
        for upstream, up in zip(self.upstreams.values(), results, strict=True):
            self.metrics.upstream_up.labels(upstream.name).set(1.0 if up else 0.0)

    async def reload_if_changed(self) -> bool:
        """Swap in the policy file if its bytes changed and it loads; keep the old one otherwise."""
        try:
            sha = await asyncio.to_thread(_sha256, self.settings.policy)
        except OSError as exc:
            log.warning("policy file unreadable, keeping the loaded one: %s", exc)
            return False
        if sha == self.loaded.sha256:
            return False
        try:
            loaded = await asyncio.to_thread(load, self.settings)
        except LaloError as exc:
            self.metrics.policy_reloads.labels("refused").inc()
            log.error("new policy refused, keeping the loaded one: %s", exc)
            self.loaded = Loaded(self.loaded.router, sha, self.loaded.cloud_allowed)  # do not retry the same bytes
            return False
        self.loaded = loaded
        self.metrics.policy_reloads.labels("loaded").inc()
        log.info("policy reloaded: %s (sha256 %s)", self.settings.policy, sha[:12])
        return True

    def candidates(self, first: str, loaded: Loaded) -> list[Upstream]:
        """The model asked for (or routed to), then its fallbacks in policy order, then the cloud if allowed."""
        names = [first, *loaded.router.policy.fallbacks.get(first, [])]
        chain = [self.upstreams[n] for n in dict.fromkeys(names) if n in self.upstreams]
        if self.cloud is not None and loaded.cloud_allowed:
            chain.append(self.cloud)
        return chain
