"""Observability: structured logs, Prometheus metrics and OpenTelemetry traces.

`logging` is light and imported by the engine; `metrics` (prometheus-client) is
imported by `sire agent` and `sire server` only; `tracing` imports the OpenTelemetry
SDK only when the OTEL_* variables turn tracing on.
"""
