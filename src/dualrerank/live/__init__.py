"""The live loop (docs/live.md): the reranker serves the world's users over HTTP, one service per arm, and each
learning arm learns from its own logged traffic, round by round (``loop.LiveLoop``)."""
