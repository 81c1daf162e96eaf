"""One pipeline, two runners: ``STAGES``, ``dvc.yaml`` and the Prefect flow name the same steps in the same
order; each DVC stage runs its stage module, lists the params sections the module reads and every package
module it imports; the deployments in ``prefect.yaml`` run the flow with parameters it accepts."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import yaml

from dualrerank.config import Params
from dualrerank.stages import STAGES, stage_module

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
# Imported everywhere and never a cause to rerun: parameters are DVC params, paths and MLflow are plumbing.
NOT_CODE_DEPS = ("dualrerank/config/", "dualrerank/paths.py", "dualrerank/tracking.py", "dualrerank/stages/__init__.py")


def module_file(name: str) -> Path:
    path = SRC / Path(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_files(module: str) -> set[Path]:
    """Source files of every ``dualrerank`` module ``module`` imports, directly or not (read from the code)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not module_file(name).exists():
            continue
        seen.add(name)
        file = module_file(name)
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("dualrerank")]
            elif isinstance(node, ast.ImportFrom):
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, node.module or ""]) if node.level else node.module
                if base and base.startswith("dualrerank"):
                    todo += [base.strip("."), *(f"{base.strip('.')}.{a.name}" for a in node.names)]
    files = {module_file(n) for n in seen if module_file(n).exists()}
    return {f for f in files if not _is_marker(f) and not any(x in f.as_posix() for x in NOT_CODE_DEPS)}


def _is_marker(file: Path) -> bool:
    """An ``__init__.py`` holding only a docstring: importing it runs no code."""
    body = ast.parse(file.read_text()).body
    return file.name == "__init__.py" and all(isinstance(n, ast.Expr) for n in body)


def flow_module(name: str = "pipeline"):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"parity_flow_{name}", ROOT / "flows" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stages_dvc_and_flow_name_the_same_steps_in_the_same_order():
    flow = flow_module()
    assert list(DVC) == list(STAGES)
    assert list(flow.TASKS) == list(STAGES)
    assert [t.name for t in flow.TASKS.values()] == list(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_each_dvc_stage_runs_its_module_and_lists_what_it_reads(stage):
    spec, module = DVC[stage], stage_module(stage)
    assert spec["cmd"] == f"dualrerank run {stage}"
    sections = {p.split(".")[0] for p in spec.get("params", [])}
    assert sections <= {"common", *module.SECTIONS}, f"{stage} lists params of sections it does not read"
    if stage in Params.model_fields:
        assert stage in spec["params"], f"{stage} must depend on its own params section"
    code_deps = [ROOT / d for d in spec["deps"] if d.startswith("src/")]
    assert all(d.exists() for d in code_deps), [str(d) for d in code_deps if not d.exists()]
    imported = imported_files(f"dualrerank.stages.{stage}")
    missing = [f for f in imported if not any(f.is_relative_to(d) for d in code_deps)]
    assert not missing, f"{stage} imports code dvc.yaml does not list: {[str(f.relative_to(ROOT)) for f in missing]}"


def test_data_flows_forward_only():
    """Each data dependency is an output of an earlier stage (or lies inside one)."""
    produced: list[str] = []
    for stage, spec in DVC.items():
        data_deps = [d for d in spec["deps"] if d.startswith("data/")]
        for dep in data_deps:
            assert any(dep == out or dep.startswith(out + "/") for out in produced), f"{stage}: nothing makes {dep}"
        for entry in [*spec.get("outs", []), *spec.get("metrics", [])]:
            produced.append(next(iter(entry)) if isinstance(entry, dict) else entry)


def test_deployments_run_the_flow_with_parameters_it_accepts():
    accepted = {
        "flows/pipeline.py:pipeline": set(inspect.signature(flow_module().pipeline.fn).parameters),
        "flows/live.py:live": set(inspect.signature(flow_module("live").live.fn).parameters),
    }
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert {d["name"] for d in deployments} >= {"nightly-retrain", "streaming-finetune", "live-loop"}
    for d in deployments:
        assert d["entrypoint"] in accepted, d["name"]
        assert set(d["parameters"]) <= accepted[d["entrypoint"]], d["name"]
        assert d["work_pool"]["name"] and d["schedules"], d["name"]
