"""The product's core: the Best-of-N reranker and its judge (pure torch; no serving, training or tracking).

Evaluation, fine-tuning, release and the BentoML service all rerank through :class:`Reranker`, so the
policy that is measured offline is the policy that is served."""

from dualrerank.reranking.reranker import Judge, Reranker, RerankResult, RuleScorer, prior_rules

__all__ = ["Judge", "RerankResult", "Reranker", "RuleScorer", "prior_rules"]
