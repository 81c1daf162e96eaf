"""Serving: request/response schemas, the Best-of-N reranker, the BentoML service and its load benchmark."""
