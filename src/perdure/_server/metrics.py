"""``/metrics``: the engine's counters in the Prometheus text format.

Instance counts come from the store at scrape time (one grouped scan); the
rest from ``Engine.stats`` and ``Engine.executor_stats``, the plain counters the
core keeps (resident actors as a gauge, actor activations and evictions as counters).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from perdure import Engine, Status
from perdure._model.stats import Histogram

ACTOR_COUNTERS = {
    "actor_activations": "Actor objects made in memory by this executor: first calls, and restores after eviction",
    "actor_evictions": "Actor objects this executor dropped from memory (least recently used, or idle)",
    "actor_direct_calls": "Actor calls from clients run at once on an idle actor and recorded in one commit",
}
GAUGES = (
    ("actors_resident", "perdure_actors_resident", "Actor objects this executor keeps in memory now"),
    ("shards", "perdure_executor_shards", "Shards this executor leases now: it claims their instances"),
)
"""The figures of ``Engine.executor_stats`` that are levels, not counts: (key, name, help)."""


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*h.bounds, float("inf")), h.counts, strict=True):
        running += n
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=h.total)


class EngineCollector(Collector):
    """Reads one engine; ``refresh`` (async) must run before each scrape's ``collect``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: dict[tuple[Status, str], int] = {}

    async def refresh(self) -> None:
        self.counts = await self.engine.count()

    def collect(self) -> Iterator[Metric]:
        instances = GaugeMetricFamily(
            "perdure_instances", "Workflow instances in the database, by status and workflow name",
            labels=["status", "name"],
        )  # fmt: skip
        for (status, name), n in sorted(self.counts.items()):
            instances.add_metric([status.value, name], n)
        yield instances
        s = self.engine.stats
        yield _histogram(
            "perdure_step_seconds", "Duration of a step's last attempt, per ended step", s.step_seconds
        )
        yield CounterMetricFamily(
            "perdure_step_retries", "Step attempts beyond the first, over ended steps", value=s.step_retries
        )
        yield CounterMetricFamily("perdure_steps_failed", "Steps that failed for good", value=s.steps_failed)
        yield _histogram("perdure_commit_ops", "Operations per group commit", s.commit_ops)
        yield _histogram("perdure_commit_seconds", "Duration of one group commit", s.commit_seconds)
        yield _histogram(
            "perdure_claim_lag_seconds", "Ready-queue lag: from due to claimed by this executor", s.claim_lag
        )
        counters = dict(self.engine.executor_stats)
        for key, name, doc in GAUGES:
            if key in counters:
                yield GaugeMetricFamily(name, doc, value=counters.pop(key))
        for key, doc in ACTOR_COUNTERS.items():
            if key in counters:
                yield CounterMetricFamily(f"perdure_{key}", doc, value=counters.pop(key))
        for key, value in sorted(counters.items()):
            yield CounterMetricFamily(
                f"perdure_executor_{key}", f"This executor's {key} since it started", value=value
            )


class Metrics:
    """A registry of its own (no global state): this engine's collector and the process's."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = EngineCollector(engine)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)

    async def render(self) -> bytes:
        await self.collector.refresh()
        return generate_latest(self.registry)
