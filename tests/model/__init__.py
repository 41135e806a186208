"""Tests of `sire.model`: the workflow format, loader, URIs, graph, durations and templates."""
