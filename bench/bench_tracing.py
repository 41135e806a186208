"""The cost of OpenTelemetry tracing on the engine: the 1,000-step chain, tracing off vs on.

On: Sire's spans (execution, each attempt, each call) on an SDK TracerProvider whose
BatchSpanProcessor hands them to an exporter that drops them (what an OTLP exporter
costs is on its own thread and network). Off: no tracer, the default without OTEL_*.
In-memory store, built-in tools in-process: the worst case, where a step costs least.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from _common import best_of, parse_args, report
from bench_engine import SERVER, chain, run_once
from sire.dispatch.inprocess import InProcessDispatcher
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.observability.tracing import Tracer
from sire.storage.memory import MemoryStore


class Dropping(SpanExporter):
    """Takes every batch and keeps nothing."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def engine(tracer: Tracer | None) -> Engine:
    mux = DispatcherMux({"sire": InProcessDispatcher(SERVER)}, entry_points=False)
    return Engine(MemoryStore(), mux, tracer=tracer)


def main() -> None:
    import asyncio

    args = parse_args(__doc__ or "")
    repeats = 2 if args.quick else 7
    n = 200 if args.quick else 1000
    workflow = chain(n, templated=True)
    exporter = Dropping()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=1 << 16))
    off, on = engine(None), engine(Tracer(provider))
    asyncio.run(run_once(workflow, off))  # compile once: both measure the warm engine
    asyncio.run(run_once(workflow, on))
    wall_off = best_of(repeats, lambda: asyncio.run(run_once(workflow, off)))
    wall_on = best_of(repeats, lambda: asyncio.run(run_once(workflow, on)))
    provider.force_flush()
    report(f"{n}-chain, tracing off", wall_off, "ms", None, "", "-")
    report(f"{n}-chain, tracing on (SDK, batch, dropping)", wall_on, "ms", wall_off, "off", "-")
    report(
        "    tracing's cost per step",
        (wall_on - wall_off) / n,
        "us",
        wall_off / n,
        "per step, off",
        "- (reported)",
    )
    made = exporter.spans
    assert made >= n, made  # the spans were really made
    per_span = best_of(repeats, lambda: bare_spans(provider, 2_000)) / 2_000
    spans_per_step = made / (n * (repeats + 1))
    report(
        "    the SDK's own span, start to end (floor)",
        per_span,
        "us",
        None,
        "",
        f"- ({spans_per_step:.1f} spans a step: {spans_per_step * per_span * 1e6:.0f} us)",
    )
    provider.shutdown()


def bare_spans(provider: TracerProvider, count: int) -> float:
    """Seconds to start and end `count` spans with one attribute, straight on the SDK."""
    import time

    tracer = provider.get_tracer("bench")
    start = time.perf_counter()
    for _ in range(count):
        with tracer.start_as_current_span("bare") as span:
            span.set_attribute("sire.step", "s")
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
