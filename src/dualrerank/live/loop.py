"""The live loop (``dualrerank live``, docs/live.md): rounds of served traffic, logged and learned from.

A round, in order (each phase is recorded in ``data/live/state.json`` once done, so a rerun after a crash picks
up where the round stopped and never serves, logs or learns twice):

1. **traffic**: the round's fresh requests (``LiveWorld``) go over HTTP to the arm's ``bentoml serve`` process
   (users split by ``assign_arms``); the world draws feedback for the page served; the impressions are appended
   to the log store in chunks of ``live.chunk`` requests, skipping requests already logged;
2. **validation**: the round's partition against the Great Expectations suite; a bad partition is moved to the
   store's quarantine with its report, and the round learns nothing from it;
3. **measurement** (for the report only): the world's expected utility of the pages served, per arm, and each
   served version's offline headroom on the test split;
4. **learning**: both evaluators continue on the logs so far (the newest round plus ``replay_rounds``, without
   the round's newest ``gate_requests``), each keeping its best epoch on the newest ``evaluator_val_requests`` of
   them; each learning arm fine-tunes its current generator on the newest
   ``window`` requests, the held-out evaluator compares it with the current version on the gate requests, the
   challenger is registered, and only a winner moves the arm's alias and is swapped in (blue-green).

``Faults`` injects the failures the tests exercise: a service killed mid-round, a learner killed mid-round, a
corrupt partition and a worse challenger.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from dualrerank import registry
from dualrerank.bench.traffic import slate_body
from dualrerank.config import Params
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation.evalset import finite_or_null
from dualrerank.live import learn
from dualrerank.live.arms import assign_arms
from dualrerank.live.logstore import ARM, MODEL_VERSION, N_SAMPLES, LogStore
from dualrerank.live.measure import Truth
from dualrerank.live.report import assemble, plot_live, round_lines
from dualrerank.live.services import ArmServices
from dualrerank.live.stream import LiveWorld
from dualrerank.models.io import load_as, save_model
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.reranking import Judge
from dualrerank.tracking import tracking_uri, use_experiment
from dualrerank.validation.check import validate_table
from dualrerank.world.logs import impressions_table
from dualrerank.world.requests import RequestSet, context_feature_names, item_feature_names
from dualrerank.world.responses import sample_responses
from dualrerank.world.simulator import World

LEARNING_ARMS = ("ldro", "grpo")  # an arm's name is its method


class LearnerKilled(RuntimeError):
    """Raised by an injected fault: the learner stops mid-round, as if its process had died."""


@dataclass
class Faults:
    """Failures to inject (tests): hooks called at fixed points of a round; ``None`` does nothing."""

    after_chunk: Callable[[int, int, ArmServices], None] | None = None  # (round, chunk start, services)
    before_validation: Callable[[int, Path], None] | None = None  # (round, partition file)
    challenger: Callable[[int, str, torch.nn.Module], None] | None = None  # (round, arm, net): may alter or raise


def clear(root: Path) -> None:
    """Delete the live loop's state (log store, model files, service logs) to start again from round 0."""
    folder = Paths(root).live
    if folder.exists():
        shutil.rmtree(folder)
        print(f"live: started over ({folder} deleted)", flush=True)


class LiveLoop:
    def __init__(self, params: Params, root: Path, faults: Faults | None = None) -> None:
        self.params, self.cfg, self.paths = params, params.live, Paths(root)
        if not self.paths.world.exists():
            raise FileNotFoundError(f"the live loop plays the world's users: no {self.paths.world}; run `make run`")
        self.faults = faults or Faults()
        self.store = LogStore(self.paths.live / "impressions")
        self.meta = SlateMeta.load(self.paths.meta)
        world = World.load(self.paths.world)
        self.world = LiveWorld.from_world(world, self.cfg.drift)
        self.services = ArmServices(root, self.paths.live / "services", self.cfg.startup_timeout_s)
        self.teacher = load_as(self.paths.model("teacher"), ARTeacher)[0]
        self.viewport = world.cfg.viewport
        self.state: dict[str, Any] = self._load_state()
        self.truth = Truth(params, self.paths, self.world, self.meta)

    # --- state ------------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.paths.live / "state.json"

    def _settings(self) -> dict[str, Any]:
        """The settings a loop must keep from start to end (``rounds`` may grow: the loop goes on)."""
        return {k: v for k, v in self.cfg.model_dump(mode="json").items() if k != "rounds"}

    def _load_state(self) -> dict[str, Any]:
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            if state.get("settings") != self._settings():
                raise ValueError(
                    f"{self.state_file} was started with other live settings: finish it with those, or start over "
                    "with `dualrerank live --restart` (which deletes data/live)"
                )
            return state
        return {"settings": self._settings(), "rounds": {}}

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.state_file)

    def model_file(self, name: str) -> Path:
        return self.paths.live / "models" / f"{name}.ckpt"

    # --- the loop ---------------------------------------------------------------------------------
    def pending(self, rounds: int | None = None) -> list[int]:
        """The rounds not done yet, at most ``rounds`` of them (all by default), in order."""
        todo = [r for r in range(self.cfg.rounds) if not self.state["rounds"].get(str(r), {}).get("done")]
        return todo if rounds is None else todo[:rounds]

    def run(self, rounds: int | None = None, play: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Play (or resume) at most ``rounds`` rounds not done yet with the arms' services up (``play``: how to
        run one round, ``run_round`` unless given); returns the report."""
        todo = self.pending(rounds)
        if todo:
            try:
                self.start()
                for r in todo:
                    (play or self.run_round)(r)
            finally:
                self.services.stop()
        return self.report()

    def start(self) -> None:
        """Round 0's versions (the champion for every arm, first time only) and one service per arm."""
        if "arms" not in self.state:
            self.state["arms"] = self._initial_arms()
            self.save()
        self.truth.drifted_oracle()
        threads = [
            threading.Thread(target=self.services.start, args=(arm, s["tag"]), daemon=True)
            for arm, s in self.state["arms"].items()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        missing = [arm for arm in self.state["arms"] if arm not in self.services.routes]
        if missing:
            self.services.stop()
            raise RuntimeError(f"the services of {missing} did not start; see {self.services.logs}")

    def _initial_arms(self) -> dict[str, dict[str, Any]]:
        params, root = self.params, self.paths.root
        start, which = registry.champion(params, root), params.release.alias
        if start is None:  # no release passed the gate yet: the newest registered version, said so
            start, which = registry.latest(params, root), "newest (no champion yet)"
        if start is None:
            raise LookupError(f"no registered {params.release.model_name!r} version to start from: run `make run`")
        version = str(start.version)
        folder = self.paths.live / "models" / "start"
        files = registry.download(params, version, folder, root)
        generator, judge = self.model_file("r-001_generator"), self.model_file("r-001_evaluator")
        shutil.copyfile(files["generator"], generator)
        shutil.copyfile(files["evaluator"], judge)
        shutil.copyfile(self.paths.heldout_judge, self.model_file("r-001_evaluator_heldout"))
        shutil.rmtree(folder)
        self.state["evaluators"] = {
            "evaluator": str(judge),
            "evaluator_heldout": str(self.model_file("r-001_evaluator_heldout")),
        }
        tag = learn.package(params, self._files(generator, judge), version)
        for arm in self.cfg.arms:
            registry.promote(params, version, root, alias=f"live-{arm}")
        print(f"live: every arm starts from {params.release.model_name} version {version}, the {which} ({tag})")
        return {
            arm: {"version": version, "tag": tag, "generator": str(generator), "judge": str(judge), "scale": None}
            for arm in self.cfg.arms
        }

    def _files(self, generator: Path, judge: Path) -> dict[str, Path]:
        return {"generator": generator, "judge": judge, "teacher": self.paths.model("teacher")}

    def run_round(self, r: int) -> None:
        rs = self.state["rounds"].setdefault(str(r), {"seconds": {}, "failed_requests": {}})
        requests = self.world.round_requests(r, self.cfg.requests_per_round, self.cfg.seed)
        arms = assign_arms(requests.user, self.cfg.arms, self.cfg.shares, salt=f"live-{self.cfg.seed}")
        drift = " (the world has drifted)" if self.world.drifted(r) else ""
        print(f"live: round {r}/{self.cfg.rounds - 1}: {len(requests)} requests{drift}", flush=True)
        import mlflow

        use_experiment(self.params, self.paths.root)
        with mlflow.start_run(run_name=f"live/round={r:04d}"):
            mlflow.set_tags({"live.round": str(r), "live.drifted": str(self.world.drifted(r)).lower()})
            if not rs.get("served"):
                self._timed(rs, "traffic", lambda: self.serve(r, requests, arms, rs))
                rs["served"] = True
                self.save()
            if "validation" not in rs:
                self._timed(rs, "validation", lambda: self.validate(r, rs))
                self.save()
            if "rows" not in rs:
                rs["rows"] = self._timed(rs, "measurement", lambda: self.measure(r, requests, rs))
                self.save()
            if rs["validation"] == "passed":
                self.learn(r, requests, rs)
            rs["done"] = True
            self.save()
            self._timed(rs, "record", lambda: self.record(r))
            self.save()
            report = self.report()
            for row in report["rounds"]:
                if row["round"] == r:
                    mlflow.log_metrics(
                        {f"{row['arm']}.{k}": float(row[k]) for k in ("served_true_utility", "logged_reward")}
                        | {f"{row['arm']}.offline_headroom_captured": float(row["offline_headroom_captured"])},
                        step=r,
                    )
        self._print_round(r)

    def _timed(self, rs: dict[str, Any], phase: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        rs["seconds"][phase] = rs["seconds"].get(phase, 0.0) + time.perf_counter() - t0
        return out

    # --- 1. traffic -------------------------------------------------------------------------------
    def serve(self, r: int, requests: RequestSet, arms: np.ndarray, rs: dict[str, Any]) -> None:
        logged = self.store.request_ids()
        ids = requests.request_id.astype(str)
        item_names, context_names = item_feature_names(self.world.base.cfg), context_feature_names(self.world.base.cfg)
        for c in range(0, len(requests), self.cfg.chunk):
            rows = np.array([i for i in range(c, min(c + self.cfg.chunk, len(requests))) if ids[i] not in logged])
            if len(rows) == 0:
                continue
            part = requests.subset(rows)
            try:
                pages, versions = self.services.rerank_pages(part, arms[rows], self.cfg.n_samples, self.meta.page_len)
            finally:  # failed attempts count even when the chunk does not complete
                for arm, count in self.services.take_failed().items():
                    rs["failed_requests"][arm] = rs["failed_requests"].get(arm, 0) + count
                self.save()
            world = self.world.at(r, part)
            feedback = sample_responses(
                world.model, world.requests, pages, np.random.default_rng([self.cfg.seed, r, c])
            )
            table = impressions_table(part, pages, feedback, item_names, context_names)
            n = part.item_id.shape[1]
            table[ARM] = np.repeat(arms[rows], n)
            table[MODEL_VERSION] = np.repeat(versions, n)
            table[N_SAMPLES] = self.cfg.n_samples
            appended = self.store.append(r, table)
            rs["duplicated_rows_skipped"] = rs.get("duplicated_rows_skipped", 0) + appended.duplicated
            self.save()
            if self.faults.after_chunk is not None:
                self.faults.after_chunk(r, c, self.services)

    # --- 2. validation ----------------------------------------------------------------------------
    def validate(self, r: int, rs: dict[str, Any]) -> None:
        path = self.store.partition(r)
        if self.faults.before_validation is not None:
            self.faults.before_validation(r, path)
        table = pd.read_parquet(path)
        report = validate_table(
            table.drop(columns=[ARM, MODEL_VERSION, N_SAMPLES]),
            self.params.validate,
            self.params.data.max_candidates,
            self.params.data.reward,
        )
        if report.success:
            rs["validation"] = "passed"
            return
        folder = self.store.quarantine(r, report.to_markdown())
        rs["validation"] = "quarantined"
        rs["quarantine"] = str(folder)
        print(
            f"live: round {r}'s partition failed validation, quarantined in {folder}:\n{report.summary()}", flush=True
        )

    # --- 3. measurement (the world's truth: report only) --------------------------------------------
    def measure(self, r: int, requests: RequestSet, rs: dict[str, Any]) -> list[dict[str, Any]]:
        return self.truth.rows(r, requests, self.round_table(r), self.state["arms"], rs["failed_requests"])

    def round_table(self, r: int) -> pd.DataFrame:
        path = self.store.partition(r)
        return pd.read_parquet(path if path.exists() else self.store.quarantined(r))

    # --- 4. learning ------------------------------------------------------------------------------
    def learn(self, r: int, requests: RequestSet, rs: dict[str, Any]) -> None:
        rounds = [q for q in range(r - self.cfg.replay_rounds, r + 1) if q in self.store.rounds()]
        slates = learn.logs_to_slates(self.store.read(rounds), self.meta)
        gate_ids = set(requests.request_id[-self.cfg.gate_requests :].astype(str))
        is_gate = np.isin(slates.request_id, list(gate_ids))
        train, gate = slates.subset(np.flatnonzero(~is_gate)), slates.subset(np.flatnonzero(is_gate))
        if "evaluators" not in rs:
            dest = {role: self.model_file(f"r{r:03d}_{role}") for role in learn.ROLES}
            warm = {role: Path(p) for role, p in self.state["evaluators"].items()}
            fit, val = learn.recent_holdout(train, self.cfg.evaluator_val_requests)
            update = learn.update_evaluators
            self._timed(rs, "evaluators", lambda: update(self.params, self.paths, self.meta, fit, val, warm, dest))
            rs["evaluators"] = {role: str(p) for role, p in dest.items()}
            self.state["evaluators"] = rs["evaluators"]
            self.save()
        learned = rs.setdefault("learned", {})
        for arm in (a for a in self.cfg.arms if a in LEARNING_ARMS and a not in learned):
            t0 = time.perf_counter()
            learned[arm] = self.learn_arm(r, arm, train, gate, rs["evaluators"])
            rs["seconds"][f"learn_{arm}"] = time.perf_counter() - t0
            self.save()

    def learn_arm(self, r: int, arm: str, train: Slates, gate: Slates, evaluators: dict[str, str]) -> dict[str, Any]:
        s = self.state["arms"][arm]
        scale = {k: torch.tensor(v) for k, v in s["scale"].items()} if s["scale"] else None
        run, record = learn.finetune_arm(
            self.params, self.meta, arm, Path(s["generator"]), Path(evaluators["evaluator"]), self.teacher, train,
            self.cfg.seed + r, scale, self.viewport, tracking_uri(self.params, self.paths.root),
        )  # fmt: skip
        if self.faults.challenger is not None:
            self.faults.challenger(r, arm, run.net)
        generator = self.model_file(f"r{r:03d}_{arm}_generator")
        meta = {**record["meta"], "stage": "live", "method": arm, "round": r, "parent_version": s["version"]}
        save_model(generator, "student", record["hparams"], run.net, meta)
        judge = Path(evaluators["evaluator"])
        t, ids, n = slate_tensors(gate), gate.request_id, self.cfg.n_samples
        current = learn.best_of_n_pages(Path(s["generator"]), Path(s["judge"]), t, ids, n, self.params)
        challenger = learn.best_of_n_pages(generator, judge, t, ids, n, self.params)
        heldout = Judge.from_file(Path(evaluators["evaluator_heldout"]))
        verdict = learn.gate(heldout, t, current, challenger, self.cfg.min_improvement)
        tags = {"live.arm": arm, "live.round": str(r), "live.parent_version": s["version"]}
        tags |= {"promoted": str(verdict["promote"]).lower(), "heldout_gain": f"{verdict['gain']:.5f}"}
        metadata = learn.served_metadata(self.params, generator, self.meta, self.viewport) | {"arm": arm, "round": r}
        version = learn.register(self.params, self.paths.root, generator, judge, metadata, tags)
        out = {"gate": verdict, "registered_version": version, "promoted": verdict["promote"], "seconds": run.seconds}
        if verdict["promote"]:
            registry.promote(self.params, version, self.paths.root, alias=f"live-{arm}")
            tag = learn.package(self.params, self._files(generator, judge), version)
            size = {"n_samples": self.cfg.n_samples}  # probes during the swap: the gate requests, answers not logged
            probes = [json.dumps(slate_body(gate, i) | size).encode() for i in range(min(len(gate), 64))]
            out["swap"] = self.services.swap_under_load(arm, tag, probes)
            scale_now = {k: v.tolist() for k, v in run.scale.items()} if arm == "ldro" else None
            self.state["arms"][arm] = {
                "version": version, "tag": tag, "generator": str(generator), "judge": str(judge), "scale": scale_now,
            }  # fmt: skip
        else:  # idempotent: after a crash between promotion and this record, the alias returns to what serves
            registry.promote(self.params, s["version"], self.paths.root, alias=f"live-{arm}")
        kept = f"kept version {s['version']} (challenger v{version} not promoted)"
        verb = f"promoted version {version}" if verdict["promote"] else kept
        print(
            f"live: round {r} {arm}: held-out gain {verdict['gain']:+.4f} ± {verdict['gain_ci95']:.4f}; {verb}",
            flush=True,
        )
        return out

    # --- records ----------------------------------------------------------------------------------
    def record(self, r: int) -> None:
        """``live.json`` and its plot; the log store's new version recorded by DVC (``dvc add``)."""
        report = self.report()
        path = self.paths.report("live.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(finite_or_null(report), indent=2, allow_nan=False))
        plot_live(report, self.paths.plots / "live.png")
        if (self.paths.root / ".dvc").exists():
            cmd = [sys.executable, "-m", "dvc", "add", "--quiet", str(self.store.root.relative_to(self.paths.root))]
            out = subprocess.run(cmd, cwd=self.paths.root, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"live: dvc add of the log store failed (the loop goes on):\n{out.stderr[-1500:]}", flush=True)

    def report(self) -> dict[str, Any]:
        return assemble(self.state, self.cfg, self.store, self.world.base.cfg.n_requests, self.meta.page_len)

    def _print_round(self, r: int) -> None:
        print("\n".join(round_lines(r, self.state["rounds"][str(r)])), flush=True)
