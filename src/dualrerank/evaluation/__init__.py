"""Offline evaluation: policies as page producers, diagnostics, latency (glued by ``stages/evaluate``)."""
