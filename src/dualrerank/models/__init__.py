"""Plain ``nn.Module`` networks (no Lightning, MLflow, Prefect or BentoML here)."""

from dualrerank.models.components import SlateInputs
from dualrerank.models.encoder import SetEncoder
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import build_model, load_model, save_model
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher

__all__ = [
    "ARTeacher",
    "ListEvaluator",
    "NARStudent",
    "PointwiseScorer",
    "SetEncoder",
    "SlateInputs",
    "build_model",
    "load_model",
    "save_model",
]
