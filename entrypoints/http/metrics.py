"""Prometheus metrics (``prometheus-client``), updated by the HTTP layer from what each
request did; the domain knows nothing of them.

The request middleware (``request_log``) reads what a request left in its state: the route
template and status for the latency histogram; on the admit route the outcome (admitted,
replayed) or the refusal code; on settle the outcome and any ``settle_anomaly`` the
controller recorded; on the payment webhook the event's outcome; on the LLM proxy's call
routes the outcome, the refusal code and the upstreams tried (``proxy_attempts``); a key
store failure on any route; and samples the database pools at most once a second.

One process counts into its own registry. Under ``tierkeeper serve --workers N`` the
workers share nothing, so ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before they start:
every worker then writes its values to files there, and whichever worker answers
``/metrics`` reads and sums all of them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

from adapters.sql.pool_usage import PoolUsage

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ADMIT_ROUTE = "/api/v1/gateway/admit"
SETTLE_ROUTE = "/api/v1/gateway/settle"
KEY_FAILURE_ROUTE = "/api/v1/gateway/key-failure"
WEBHOOK_ROUTE = "/api/v1/billing/webhook"
PROXY_ROUTES = {"/v1/chat/completions": "chat_completions", "/v1/messages": "messages"}
"""The LLM proxy's call routes, by the endpoint label they are counted under."""
UNMATCHED_ROUTE = "unmatched"
REFUSAL_CODES = frozenset(
    {
        "message_cap_reached",
        "token_budget_exhausted",
        "subscription_inactive",
        "tenant_unknown",
        "byok_key_invalid",
    }
)
KEY_ERROR_CODES = frozenset({"key_store_unavailable"})
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods named in the labels; any other is ``other``, so a client cannot make series."""
POOL_SAMPLE_INTERVAL_S = 1.0
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


PoolSampler = Callable[[], Sequence[PoolUsage]]
ScrapeHook = Callable[[Any, "Metrics"], Awaitable[None]]
"""Run before every ``/metrics`` answer with the services and the metrics: a place to set
gauges that are read from storage, such as the notification outbox's backlog."""


def fallback_reason(status_code: int | None) -> str:
    """Why the proxy left an upstream for the next one."""
    if status_code is None:
        return "unreachable"
    if status_code in (401, 403):
        return "key_rejected"
    if status_code == 429:
        return "rate_limited"
    return "upstream_error"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


@attrs.define
class Metrics:
    """Every metric the service exports, in one registry of its own."""

    registry: CollectorRegistry
    requests: Histogram
    admissions: Counter
    settlements: Counter
    settle_anomalies: Counter
    key_failures: Counter
    webhook_events: Counter
    outbox_backlog: Gauge
    outbox_delivery_failures: Counter
    db_pool: Gauge
    proxy_calls: Counter
    proxy_upstream_responses: Counter
    proxy_fallbacks: Counter
    proxy_refusals: Counter
    scrape_hooks: list[ScrapeHook] = attrs.Factory(list)
    _pools: PoolSampler | None = None
    _pools_sampled_at: float = float("-inf")

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            requests=Histogram(
                "tierkeeper_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template, method and status.",
                ["route", "method", "status"],
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            admissions=Counter(
                "tierkeeper_admissions",
                "Admit answers: outcome admitted, replayed, refused (reason: the refusal "
                "code) or error (reason: the error code).",
                ["outcome", "reason"],
                registry=registry,
            ),
            settlements=Counter(
                "tierkeeper_settlements",
                "Settle answers: settled, replayed, or error.",
                ["outcome"],
                registry=registry,
            ),
            settle_anomalies=Counter(
                "tierkeeper_settle_anomalies",
                "Settlements that did not match their admission, by kind.",
                ["kind"],
                registry=registry,
            ),
            key_failures=Counter(
                "tierkeeper_key_failures",
                "Key failures: a provider rejecting a tenant's key (reported by the gateway) "
                "or the key store not answering.",
                ["kind"],
                registry=registry,
            ),
            webhook_events=Counter(
                "tierkeeper_webhook_events",
                "Payment provider webhooks by outcome (applied, replayed, refused, "
                "invalid_signature, ...).",
                ["outcome"],
                registry=registry,
            ),
            outbox_backlog=Gauge(
                "tierkeeper_outbox_backlog",
                "Notifications waiting in the outbox, read at scrape time.",
                registry=registry,
                multiprocess_mode="mostrecent",
            ),
            outbox_delivery_failures=Counter(
                "tierkeeper_outbox_delivery_failures",
                "Notification deliveries (mail, customer webhooks) that failed, by channel.",
                ["channel"],
                registry=registry,
            ),
            db_pool=Gauge(
                "tierkeeper_db_pool_connections",
                "Database connections per pool and state (in_use, idle, max), summed over "
                "live worker processes.",
                ["pool", "state"],
                registry=registry,
                multiprocess_mode="livesum",
            ),
            proxy_calls=Counter(
                "tierkeeper_proxy_calls",
                "LLM proxy calls by endpoint and outcome: answered (an upstream's answer "
                "passed through) or refused (the proxy's own error).",
                ["endpoint", "outcome"],
                registry=registry,
            ),
            proxy_upstream_responses=Counter(
                "tierkeeper_proxy_upstream_responses",
                "Answers the LLM proxy got from upstream providers, by provider and status "
                "(unreachable: no answer).",
                ["provider", "status"],
                registry=registry,
            ),
            proxy_fallbacks=Counter(
                "tierkeeper_proxy_fallbacks",
                "In-call fallbacks to the next upstream, by what the one left did "
                "(rate_limited, upstream_error, key_rejected, unreachable).",
                ["reason"],
                registry=registry,
            ),
            proxy_refusals=Counter(
                "tierkeeper_proxy_refusals",
                "LLM proxy calls refused by the proxy itself, by code (token_budget_exhausted, "
                "invalid_api_key, model_not_found, upstream_unavailable, ...).",
                ["reason"],
                registry=registry,
            ),
        )

    def watch_pools(self, sampler: PoolSampler) -> None:
        """Sample these pools (at most once a second, from requests, and at every scrape)."""
        self._pools = sampler
        self._pools_sampled_at = float("-inf")

    def observe_request(
        self, route: str, method: str, status: int, seconds: float, state: Mapping[str, Any]
    ) -> None:
        """Count one answered request by what it left in its state."""
        named = method if method in HTTP_METHODS else "other"
        self.requests.labels(route, named, str(status)).observe(seconds)
        code = state.get("error_code")
        if route == ADMIT_ROUTE:
            self._count_admission(status, code, state)
        elif route == SETTLE_ROUTE:
            self.settlements.labels(state.get("settlement") or self._outcome(status, code)).inc()
            if state.get("settle_anomaly"):
                self.settle_anomalies.labels(str(state["settle_anomaly"])).inc()
        elif route == KEY_FAILURE_ROUTE and status == 200:
            self.key_failures.labels("provider_rejected").inc()
        elif route in PROXY_ROUTES:
            self._count_proxy_call(PROXY_ROUTES[route], status, code, state)
        elif route == WEBHOOK_ROUTE:
            self.webhook_events.labels(
                state.get("webhook_outcome") or self._outcome(status, code)
            ).inc()
        if code in KEY_ERROR_CODES:
            self.key_failures.labels(str(code)).inc()
        self.sample_pools(time.monotonic())

    def _count_admission(self, status: int, code: object, state: Mapping[str, Any]) -> None:
        if status == 200:
            self.admissions.labels(state.get("admission") or "admitted", "").inc()
        elif code in REFUSAL_CODES:
            self.admissions.labels("refused", str(code)).inc()
        else:
            self.admissions.labels("error", str(code or status)).inc()

    def _count_proxy_call(
        self, endpoint: str, status: int, code: object, state: Mapping[str, Any]
    ) -> None:
        """A proxied call: answered, or refused by the proxy with a code; each upstream
        tried; every upstream left for the next is a fallback."""
        if code is None:
            self.proxy_calls.labels(endpoint, "answered").inc()
        else:
            self.proxy_calls.labels(endpoint, "refused").inc()
            self.proxy_refusals.labels(str(code)).inc()
        attempts = state.get("proxy_attempts") or ()
        for attempt in attempts:
            named = "unreachable" if attempt.status_code is None else str(attempt.status_code)
            self.proxy_upstream_responses.labels(attempt.provider_id, named).inc()
        for attempt in attempts[:-1]:
            self.proxy_fallbacks.labels(fallback_reason(attempt.status_code)).inc()

    @staticmethod
    def _outcome(status: int, code: object) -> str:
        if status < 400:
            return "ok"
        return str(code or "error")

    def sample_pools(self, now: float, *, force: bool = False) -> None:
        if self._pools is None or (
            not force and now - self._pools_sampled_at < POOL_SAMPLE_INTERVAL_S
        ):
            return
        self._pools_sampled_at = now
        for usage in self._pools():
            self.db_pool.labels(usage.pool, "in_use").set(usage.in_use)
            self.db_pool.labels(usage.pool, "idle").set(usage.idle)
            self.db_pool.labels(usage.pool, "max").set(usage.max_size)

    async def exposition(self, services: Any) -> bytes:
        """The text format: this process's registry, or every worker's values summed when
        running in multiprocess mode."""
        for hook in self.scrape_hooks:
            await hook(services, self)
        self.sample_pools(time.monotonic(), force=True)
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(combined, path=directory)
        return generate_latest(combined)
