"""The workload during every experiment: a bounded pool of writers and their write journal.

Each writer logs runs, params, metrics, tags, batches of all three and small artifacts
through the front door with the MLflow client as users configure it (its default retries),
and records every operation with its start, end and outcome and, when the server
acknowledged it, what it wrote. The journal is what the loss audit checks afterwards.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag

OP_TAG = "acc.op"  # every run carries the id of the operation that created it
ARTIFACT_DIR = "chaos"


@dataclass
class Op:
    id: str
    writer: int
    # create_run | log_param | set_tag | log_metric | log_batch | log_artifact | finish_run
    kind: str
    started: float  # time.monotonic()
    ended: float = 0.0
    ok: bool = False
    error: str | None = None
    write: dict[str, Any] = field(default_factory=dict)
    hung: bool = False  # still waiting for its answer when the writers were stopped

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class WriterPool:
    client: Any  # mlflow.MlflowClient
    experiment_id: str
    writers: int = 8
    artifact_every: int = 6  # one small artifact every N operations of a run
    ops_per_run: int = 14
    ops: list[Op] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[int, Op] = {}  # writer -> the call it is waiting on
        self._scratch = tempfile.TemporaryDirectory(prefix="mlflow-acc-chaos-")

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> WriterPool:
        for index in range(self.writers):
            thread = threading.Thread(
                target=self._write, args=(index,), daemon=True, name=f"chaos-writer-{index}"
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, join_timeout: float = 90.0) -> list[Op]:
        """Stop the writers; return the calls still unanswered at the deadline. Each goes
        into the journal as hung, ended now, so the longest-call bound sees it; its write is
        in doubt and not audited either way."""
        self._stop.set()
        deadline = time.monotonic() + join_timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._scratch.cleanup()
        now = time.monotonic()
        with self._lock:
            hung = [op for op in self._in_flight.values() if not op.ended]
            for op in hung:
                op.hung, op.ended = True, now
                op.error = f"no answer {op.seconds:.0f}s after the call, when the writers stopped"
                self.ops.append(op)
            self._in_flight.clear()
        return hung

    def snapshot(self) -> list[Op]:
        with self._lock:
            return [op for op in self.ops if op.ended]

    # ---- the writers -------------------------------------------------------------------
    def _record(self, op: Op, call) -> Any:
        with self._lock:
            self._in_flight[op.writer] = op
        result, error = None, None
        try:
            result = call()
        except Exception as exc:  # the client gave up after its retries: a client failure
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
        with self._lock:
            self._in_flight.pop(op.writer, None)
            if op.hung:  # stop() journaled it already; a late answer counts neither way
                return None
            op.ended, op.ok, op.error = time.monotonic(), error is None, error
            self.ops.append(op)
        return result

    def _write(self, writer: int) -> None:
        seq = 0
        run_id: str | None = None
        done_in_run = 0
        scratch = Path(self._scratch.name) / f"w{writer}"
        scratch.mkdir(parents=True, exist_ok=True)
        while not self._stop.is_set():
            seq += 1
            op_id = f"w{writer}-{seq}"
            if run_id is None:
                op = Op(op_id, writer, "create_run", time.monotonic())
                run = self._record(
                    op,
                    lambda op_id=op_id: self.client.create_run(
                        self.experiment_id, tags={OP_TAG: op_id, "acc.writer": str(writer)}
                    ),
                )
                if run is not None:
                    run_id = run.info.run_id
                    op.write = {"run_id": run_id}
                    done_in_run = 0
                continue
            done_in_run += 1
            if done_in_run >= self.ops_per_run:
                op = Op(op_id, writer, "finish_run", time.monotonic(), write={"run_id": run_id})
                self._record(op, lambda r=run_id: self.client.set_terminated(r, "FINISHED"))
                run_id = None
                continue
            kind = ("log_metric", "log_param", "set_tag", "log_batch")[seq % 4]
            if done_in_run % self.artifact_every == 0:
                kind = "log_artifact"
            op = Op(op_id, writer, kind, time.monotonic(), write={"run_id": run_id})
            self._record(op, lambda op=op, scratch=scratch: self._apply(op, scratch))

    def _apply(self, op: Op, scratch: Path) -> None:
        run_id = op.write["run_id"]
        if op.kind == "log_metric":
            step = int(op.id.rsplit("-", 1)[1])
            op.write.update(key="m", step=step, value=float(step))
            self.client.log_metric(run_id, "m", float(step), step=step)
        elif op.kind == "log_param":
            op.write.update(key=f"p_{op.id}", value=op.id)
            self.client.log_param(run_id, f"p_{op.id}", op.id)
        elif op.kind == "set_tag":
            op.write.update(key=f"t_{op.id}", value=op.id)
            self.client.set_tag(run_id, f"t_{op.id}", op.id)
        elif op.kind == "log_batch":
            step = int(op.id.rsplit("-", 1)[1])
            metric = Metric("b", step / 2, int(time.time() * 1000), step)
            op.write.update(
                metrics=[{"key": "b", "step": step, "value": step / 2}],
                params={f"bp_{op.id}": op.id},
                tags={f"bt_{op.id}": op.id},
            )
            self.client.log_batch(
                run_id,
                metrics=[metric],
                params=[Param(f"bp_{op.id}", op.id)],
                tags=[RunTag(f"bt_{op.id}", op.id)],
            )
        elif op.kind == "log_artifact":
            data = (f"artifact of {op.id}\n" * 64).encode()
            path = scratch / f"{op.id}.txt"
            path.write_bytes(data)
            op.write.update(
                path=f"{ARTIFACT_DIR}/{path.name}",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
            self.client.log_artifact(run_id, str(path), ARTIFACT_DIR)
            path.unlink()
