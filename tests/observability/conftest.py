"""Fixtures for the observability tests: an in-memory span exporter installed as Sire's tracer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sire.observability import tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Sire's spans, kept in memory (tracing on for the test, off after it)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.reset()
        provider.shutdown()
