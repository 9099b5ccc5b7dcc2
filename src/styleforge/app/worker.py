"""The app's training worker: one background thread that runs queued jobs one at a time.

Requests only record jobs (``Store.create_job``) and wake the worker, so a page never waits for
training, and two jobs are queued rather than run side by side on a small machine. A job trains
a stylizer or a sampler, or refines a stylizer on the Tune tab's picks (:mod:`.tune`).
Cancelling sets the running job's stop request: it stops at the next step boundary with its
checkpoint saved, and can be resumed later. Progress is read from the job's run folder
(``log.csv``, ``preview.png``), which the training code writes anyway.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styleforge.app import tune
from styleforge.app.store import JobRecord, Store
from styleforge.errors import DiskFull, UserError
from styleforge.fileio import read_csv_rows, row_step, write_json
from styleforge.infer.model_file import now_iso
from styleforge.train.loop import StopRequest

if TYPE_CHECKING:
    from styleforge.train.config import SamplerTrainConfig, StylizerTrainConfig
    from styleforge.train.job import JobRun, RunResult

__all__ = [
    "STABILITY_WEIGHT",
    "TRAIN_OPTIONS",
    "Progress",
    "Worker",
    "job_config",
    "progress",
    "sampler_config",
    "stylizer_config",
    "write_train_options",
]

#: A stylizer job's options beyond preset and steps, in its run folder (written before it is
#: queued, so a resume keeps them): ``{"stability_weight": W}``.
TRAIN_OPTIONS = "train_options.json"
#: The stability term's weight the Train tab offers (the README's suggested value).
STABILITY_WEIGHT = 1e8


def write_train_options(run_dir: Path, *, stability_weight: float) -> None:
    """Record a stylizer job's options (:data:`TRAIN_OPTIONS`) in its new ``run_dir``."""
    write_json(run_dir / TRAIN_OPTIONS, {"stability_weight": float(stability_weight)})


def stylizer_config(job: JobRecord) -> StylizerTrainConfig:
    """The training config of a stylizer job: its preset with its step count (the one builder,
    which also keeps a preview inside a short run) and its recorded options."""
    from styleforge.train.config import StylizerTrainConfig

    options = job.run_dir / TRAIN_OPTIONS
    stability = None
    if options.is_file():
        stability = float(json.loads(options.read_text(encoding="utf-8"))["stability_weight"])
    return StylizerTrainConfig.preset(job.preset).with_overrides(
        steps=job.steps or None, stability_weight=stability
    )


def sampler_config(job: JobRecord) -> SamplerTrainConfig:
    """The training config of a sampler job: its preset with its step count; a short job
    measures KID once, at its end."""
    from styleforge.train.config import SamplerTrainConfig

    steps = job.steps or None
    return SamplerTrainConfig.preset(job.preset).with_overrides(steps=steps, kid_every=steps)


def job_config(job: JobRecord) -> StylizerTrainConfig | SamplerTrainConfig:
    """The training config of a job: its preset with its step count."""
    return sampler_config(job) if job.kind == "sampler" else stylizer_config(job)


class Progress(dict[str, Any]):
    """``step``, ``total`` and ``preview`` (path or None)."""


def progress(job: JobRecord) -> Progress:
    """Where a job stands, from its run folder."""
    total = job.steps or job_config(job).steps
    steps = [row_step(r) for r in read_csv_rows(job.run_dir / "log.csv")]
    done = [s for s in steps if s is not None]
    step = done[-1] + 1 if done else 0
    if job.status == "done":
        step = total
    preview = job.run_dir / "preview.png"
    return Progress(step=step, total=total, preview=preview if preview.is_file() else None)


class Worker:
    """Runs the store's queued jobs, oldest first, one at a time, in a daemon thread."""

    def __init__(self, store: Store, device: str = "auto") -> None:
        self.store = store
        self.device = device
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._current: tuple[str, StopRequest] | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    def start(self) -> Worker:
        """Mark jobs a dead server left running as interrupted, then start the thread."""
        self.store.recover()
        self._thread = threading.Thread(target=self._loop, name="styleforge-worker", daemon=True)
        self._thread.start()
        self._wake.set()
        return self

    def wake(self) -> None:
        """Look for queued jobs now (a request has just queued one)."""
        self._wake.set()

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job at once, or ask the running one to stop (checkpoint kept);
        a running refine cannot stop midway."""
        job = self.store.job(job_id)
        if job.status == "queued":
            return self.store.update_job(job_id, status="cancelled", message="cancelled")
        if job.status == "running" and job.kind == "refine":
            raise UserError(f"job {job_id} is a refine: it runs to its end (a few minutes)")
        with self._lock:
            if self._current is not None and self._current[0] == job_id:
                self._current[1].requested = True
                return self.store.update_job(job_id, message="stopping at the next step")
        raise UserError(f"job {job_id} is {job.status}; only queued or running jobs cancel")

    def resume(self, job_id: str) -> JobRecord:
        """Queue an interrupted or cancelled job again; it continues from its checkpoint."""
        job = self.store.job(job_id)
        if not job.resumable:
            raise UserError(f"job {job_id} is {job.status} and has no checkpoint to resume from")
        job = self.store.update_job(job_id, status="queued", message="queued to resume")
        self.wake()
        return job

    def close(self, timeout: float = 30.0) -> None:
        """Stop the running job (checkpoint saved) and the thread."""
        self._closing = True
        with self._lock:
            if self._current is not None:
                self._current[1].requested = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is queued or running (for tests); False on timeout."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not any(j.status in ("queued", "running") for j in self.store.jobs()):
                return True
            time.sleep(0.2)
        return False

    def _loop(self) -> None:
        while not self._closing:
            job = self.store.next_queued()
            if job is None:
                self._wake.wait(timeout=2.0)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: JobRecord) -> None:
        stop = StopRequest()
        with self._lock:
            self._current = (job.id, stop)
        doing = "refining" if job.kind == "refine" else "training"
        self.store.update_job(job.id, status="running", started=now_iso(), message=doing)
        try:
            outcome = self._work(job, stop)  # first: ``finished`` is when it has ended
            self.store.update_job(job.id, finished=now_iso(), **outcome)
        except UserError as err:
            self.store.update_job(job.id, status="failed", message=str(err), finished=now_iso())
        except DiskFull as err:  # the last checkpoint is intact: the job can go on from it
            message = f"{err}; free some space, then resume"
            try:
                self.store.update_job(
                    job.id, status="interrupted", message=message, finished=now_iso()
                )
            except DiskFull:  # not even the job list could be written; it says "running"
                print(f"styleforge: job {job.id}: {message}", file=sys.stderr)
        except Exception as err:  # a bug must not kill the worker thread
            traceback.print_exc()
            self.store.update_job(
                job.id, status="failed", message=f"internal error: {err}", finished=now_iso()
            )
        finally:
            with self._lock:
                self._current = None

    def _work(self, job: JobRecord, stop: StopRequest) -> dict[str, str]:
        """Run a job to its end; -> the job's columns to set (status, message, model)."""
        if job.kind == "refine":
            model, message = tune.run_refine(self.store, job, self.device)
            return {"status": "done", "message": message, "model": str(model)}
        result = self._train(job, stop)
        if result.stopped_early and self._closing:  # the server is stopping
            return {"status": "interrupted",
                    "message": f"the server stopped at step {result.steps}; resumable"}  # fmt: skip
        if result.stopped_early:
            return {"status": "cancelled", "message": f"stopped at step {result.steps}; resumable"}
        return {"status": "done", "message": "finished", "model": str(result.model)}

    def _train(self, job: JobRecord, stop: StopRequest) -> RunResult:
        """Train a job's model, resuming from its checkpoint when it has one."""
        style_dir = self.store.style_folder(job.style_id)
        output = self.store.root / "models" / f"{job.id}.safetensors"
        common: JobRun = {
            "run_dir": job.run_dir, "resume": (job.run_dir / "checkpoint.pt").is_file(),
            "device": self.device, "progress": False, "stop": stop,
        }  # fmt: skip
        if job.kind == "sampler":
            from styleforge.train.sampler import train_sampler

            return train_sampler(sampler_config(job), style_dir, output, **common)
        from styleforge.train.stylizer import train_stylizer

        return train_stylizer(stylizer_config(job), style_dir, output, **common)
