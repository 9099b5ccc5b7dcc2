"""The one training-job shell: folders in, model file out, with the comforts a long run needs.

Both models' jobs (:func:`styleforge.train.stylizer.train_stylizer`,
:func:`styleforge.train.sampler.train_sampler`) take the same :class:`JobRun` keywords, open a
:class:`TrainingJob` with them (the run folder checked, the config to go on with), read their
folders once, and hand their loop (run as :meth:`TrainingJob.loop_run` says) and a
:class:`JobReport` (what they log, show, preview and measure) to :func:`run_job`.

The run folder (default: ``<model>.run/`` beside the model) holds ``checkpoint.pt`` (atomic,
every ``checkpoint_every`` steps and on Ctrl-C / SIGTERM), ``log.csv`` and TensorBoard event
files with the losses, ``preview.png`` (refreshed every ``preview_every`` steps; older ones kept
in ``previews/``) and ``config.json``. Under torchrun process 0 checks the run folder and writes
everything; the other processes only train.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor
from tqdm import tqdm
from typing_extensions import TypedDict

from styleforge import collection, images
from styleforge.distributed import World
from styleforge.errors import ERROR_PRINTED, EXIT_FAULT, JobFailed, UserError
from styleforge.fileio import atomic_write, disk_full_names, read_csv_rows, row_step, write_json
from styleforge.infer.model_file import HasMetadata, write_model
from styleforge.runtime import pick_device
from styleforge.tblog import EventWriter, drop_steps_from
from styleforge.train.checkpoint import load_checkpoint
from styleforge.train.config import SamplerTrainConfig, StylizerTrainConfig
from styleforge.train.loop import SINGLE, GanState, LoopRun, StopRequest

__all__ = [
    "JobReport",
    "JobRun",
    "RunLog",
    "RunResult",
    "TrainingJob",
    "default_run_dir",
    "peers_watched",
    "prepare_run",
    "run_job",
]

C = TypeVar("C", StylizerTrainConfig, SamplerTrainConfig)
S = TypeVar("S", bound=GanState[Any, Any])
OnStep = Callable[[S], None]


@dataclass(frozen=True)
class RunResult:
    """What a finished (or stopped) training job produced."""

    model: Path | None
    run_dir: Path
    steps: int
    stopped_early: bool
    metrics: dict[str, Any]

    def line(self, figures: str, kept: str) -> str:
        """A line for the terminal: ``wrote MODEL; FIGURES; KEPT in RUN_DIR`` (the figures left
        out when empty)."""
        parts = (f"wrote {self.model}", figures, f"{kept} in {self.run_dir}")
        return "; ".join(p for p in parts if p)


def default_run_dir(model: Path) -> Path:
    """``hokusai.safetensors`` -> ``hokusai.run`` beside it."""
    return model.with_name(model.stem + ".run")


class RunLog:
    """Losses to ``log.csv`` (one row per step, ``columns``) and to TensorBoard event files.

    Every row reaches the OS as soon as it is logged (before the step's checkpoint is written),
    so after a crash (even kill -9) and ``--resume`` both logs hold every step exactly once.
    """

    def __init__(self, run_dir: Path, resume_step: int | None, columns: Sequence[str]) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "log.csv"
        self.columns = list(columns)
        # Rows hold 0-based step indices; a checkpoint with ``resume_step`` steps done trains
        # the rows from index ``resume_step`` on again: drop them (a fresh run drops them all).
        keep_below = resume_step if resume_step is not None and self.path.exists() else 0
        drop_steps_from(run_dir, keep_below)
        self._open(keep_below)
        self._tb = EventWriter(run_dir)

    def _open(self, keep_below: int) -> None:
        """Rewrite the CSV with its rows of steps < ``keep_below`` and open it for appending."""
        rows: list[dict[str, str]] = []
        if keep_below > 0:
            rows = [r for r in read_csv_rows(self.path) if _row_step(r) < keep_below]
        with atomic_write(self.path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        self._fh = open(self.path, "a", newline="")  # noqa: SIM115 (closed in close())
        self._csv = csv.DictWriter(self._fh, self.columns, extrasaction="ignore")
        self._last = _row_step(rows[-1]) if rows else -1

    def add(self, step: int, values: dict[str, float]) -> None:
        """Log one step's values (missing columns stay empty). A step at or before the last
        one logged (training rolled back after a NaN) first drops the rows from it on."""
        if step <= self._last:
            self._fh.close()
            self._tb.close()
            drop_steps_from(self.run_dir, step)
            self._open(step)
            self._tb = EventWriter(self.run_dir)
        with disk_full_names(self.path):
            self._csv.writerow({**values, "step": step})
            self._fh.flush()
        self._last = step
        self._tb.add_scalars(step, {f"loss/{k}": v for k, v in values.items() if k != "step"})

    def flush(self) -> None:
        """Push everything to the OS (``add`` already does)."""
        self._fh.flush()
        self._tb.flush()

    def close(self) -> None:
        """Flush and close both files."""
        self.flush()
        self._fh.close()
        self._tb.close()


def _row_step(row: dict[str, str]) -> int:
    """The step of a ``log.csv`` row; a torn last row (a crash mid-write) counts as unknown."""
    step = row_step(row)
    return 1 << 62 if step is None else step


def check_resumable(saved: dict[str, Any], config: C, run_dir: Path) -> C:
    """The checkpoint's config, with only ``steps`` (and the checkpoint, preview and KID
    cadence) taken from this invocation; other differences are reported, as changing them
    mid-run is not a resume."""
    old = type(config).from_dict(saved["config"])
    free = ("steps", "checkpoint_every", "preview_every", "kid_every", "compile")
    settled = config.settled_as(old)
    mismatched = [
        k for k, v in settled.to_dict().items() if k not in free and old.to_dict().get(k) != v
    ]
    if mismatched:
        print(
            f"note: resuming {run_dir} with its saved settings; ignoring changed "
            f"{', '.join(mismatched)}",
            file=sys.stderr,
        )
    cadence = {k: getattr(config, k) for k in free if hasattr(config, k) and k != "compile"}
    return replace(old, **cadence)


def prepare_run(
    config: C, output: Path, run: Path, resume: bool, world: World
) -> tuple[C, int | None]:
    """Check the output path and the run folder before a run: with ``resume``, the config to
    go on with and the step its checkpoint reached; without, refuse a run folder that holds a
    checkpoint (so an earlier run is never overwritten by accident). The batch must split
    evenly across ``world``'s processes."""
    ckpt = run / "checkpoint.pt"
    for stale in run.glob(".checkpoint.*.tmp"):  # a write killed before its rename (kill -9)
        stale.unlink(missing_ok=True)
    if output.exists() and output.is_dir():
        raise UserError(f"-o {output}: is a folder; give a file name like style.safetensors")
    saved_step = None
    if not resume:
        if ckpt.exists():
            raise UserError(
                f"{run} holds a checkpoint from an earlier run: add --resume to continue it, "
                "or pick another --run-dir"
            )
    else:
        saved = load_checkpoint(ckpt)
        config = check_resumable(saved, config, run)
        saved_step = int(saved["step"])
        # A run killed after its last checkpoint but before the model was written finishes.
        if saved_step > config.steps or (saved_step == config.steps and output.exists()):
            raise UserError(
                f"{ckpt}: already trained {saved_step} steps; pass a larger --steps to go on"
            )
    world.rows(config.batch)
    return config, saved_step


class JobRun(TypedDict, total=False):
    """How a training job runs, the keywords both jobs take: ``run_dir`` (default
    ``<output>.run``), ``resume`` its run, the ``device``, a ``progress`` bar, the largest
    picture read (``max_pixels``), a :class:`~styleforge.train.loop.StopRequest` (set from
    another thread: how the web app cancels a job) and torchrun's ``world``."""

    run_dir: Path | None
    resume: bool
    device: str | torch.device
    progress: bool
    max_pixels: int
    stop: StopRequest | None
    world: World


@dataclass(frozen=True)
class TrainingJob(Generic[C]):
    """One training job: its config (a resumed run's own), paths, device and processes, and how
    it shows itself. :meth:`open` checks the run folder; a job's files are written by process 0
    only."""

    config: C
    style_dir: Path
    output: Path
    run_dir: Path
    device: torch.device
    resume: bool
    saved_step: int | None
    stop: StopRequest
    world: World
    progress: bool = True
    max_pixels: int = images.DEFAULT_MAX_PIXELS

    @property
    def checkpoint(self) -> Path:
        """The run's checkpoint file."""
        return self.run_dir / "checkpoint.pt"

    def loop_run(self, on_step: Callable[[S], None] | None) -> LoopRun[S]:
        """How the job's loop runs: from its checkpoint when resuming, calling ``on_step``,
        stopped by its stop request, over its processes."""
        return {"resume": self.resume, "on_step": on_step, "stop": self.stop, "world": self.world}

    @classmethod
    def open(
        cls,
        config: C,
        style_dir: Path,
        output: Path,
        run_dir: Path | None = None,
        resume: bool = False,
        device: str | torch.device = "auto",
        stop: StopRequest | None = None,
        world: World = SINGLE,
        progress: bool = True,
        max_pixels: int = images.DEFAULT_MAX_PIXELS,
    ) -> TrainingJob[C]:
        """Pick the device, check the run folder (:func:`prepare_run`, on process 0) and settle
        the config: with ``resume``, the checkpoint's own, with this call's step count (the
        keywords are :class:`JobRun`'s)."""
        dev = device if isinstance(device, torch.device) else pick_device(world.device(device))
        run = run_dir if run_dir is not None else default_run_dir(output)
        checked, saved_step = world.on_main(lambda: prepare_run(config, output, run, resume, world))
        return cls(
            checked, style_dir, output, run, dev, resume, saved_step,
            stop if stop is not None else StopRequest(), world, progress, max_pixels,
        )  # fmt: skip


@dataclass(frozen=True)
class JobReport(Generic[S]):
    """What a model's job shows and keeps of its run.

    ``columns``: of ``log.csv``; ``shown``: the values on the progress bar (the latest of each);
    ``preview(state)``: writes ``preview.png`` (and its copy in ``previews/``);
    ``measure(state)``: extra figures (e.g. KID) taken every ``measure_every`` steps and at the
    end, logged with the step's losses where ``columns`` has them; ``metrics(state, measured)``:
    the model file's final figures beside the step count and time, from the state and the
    last measurement; ``info``: the model file's description (``ModelInfo`` or
    ``SamplerInfo``), given ``net``, ``training``, ``style`` and ``metrics``; ``finish(state)``:
    a last phase after the loop (the sampler's paint stage) giving the tensors the model file
    holds beside the EMA generator's, or ``None`` when it was stopped."""

    columns: tuple[str, ...]
    shown: tuple[str, ...]
    preview: Callable[[S], Path]
    metrics: Callable[[S, dict[str, float]], dict[str, Any]]
    info: Callable[..., HasMetadata]
    measure: Callable[[S], dict[str, float]] | None = None
    measure_every: int = 1
    finish: Callable[[S], Mapping[str, Tensor] | None] | None = None


def run_job(
    job: TrainingJob[Any],
    styles: collection.Collection,
    loop: Callable[[OnStep[S] | None], S],
    report: JobReport[S],
    progress: bool = True,
) -> RunResult:
    """Run ``loop`` (the model's training loop, given the per-step hook) for ``job``; then, on
    process 0 unless it stopped early, write the model file (the EMA generator, described by
    ``report.info`` with ``styles``' record) and return its result."""
    steps = job.config.steps
    if not job.world.is_main:
        with peers_watched(job.world, job.run_dir), job.stop.installed():
            state = loop(None)
        return RunResult(None, job.run_dir, state.step, state.step < steps, {})
    start = time.monotonic()
    state, measured = _logged(job, loop, report, progress)
    elapsed = time.monotonic() - start
    if state.step < steps:
        return stopped_early(state.step, steps, job.run_dir)
    report.preview(state)
    extra: Mapping[str, Tensor] = {}
    if report.finish is not None:
        with job.stop.installed():
            done = report.finish(state)
        if done is None:
            return RunResult(None, job.run_dir, state.step, True, {})
        extra, elapsed = done, time.monotonic() - start
    metrics: dict[str, Any] = {"steps": state.step, "train_seconds_this_session": round(elapsed, 1)}
    metrics |= report.metrics(state, measured)
    info = report.info(
        net=job.config.net,
        training=job.config.to_dict(),
        style=style_record(job.style_dir, styles),
        metrics=metrics,
    )
    write_model(job.output, {**state.ema.state_dict(), **extra}, info)
    return RunResult(job.output, job.run_dir, state.step, False, metrics)


def _logged(
    job: TrainingJob[Any],
    loop: Callable[[OnStep[S] | None], S],
    report: JobReport[S],
    progress: bool,
) -> tuple[S, dict[str, float]]:
    """Process 0's run of ``loop``: ``config.json``, a log row, the progress bar and, at their
    cadences, previews and measurements after every step. Returns the state and the last
    measurement."""
    config, run = job.config, job.run_dir
    run.mkdir(parents=True, exist_ok=True)
    write_json(
        run / "config.json",
        {"config": config.to_dict(), "style_dir": str(job.style_dir), "output": str(job.output),
         "processes": job.world.size},
    )  # fmt: skip
    log = RunLog(run, job.saved_step, report.columns)
    bar = tqdm(
        total=config.steps, initial=job.saved_step or 0, disable=not progress, unit="step",
        dynamic_ncols=True, file=sys.stderr,
    )  # fmt: skip
    measured: dict[str, float] = {}
    latest: dict[str, float] = {}

    def on_step(state: S) -> None:
        nonlocal measured
        row = dict(state.history[-1])
        last = state.step == config.steps
        if report.measure is not None and (state.step % report.measure_every == 0 or last):
            measured = report.measure(state)
            row |= {k: v for k, v in measured.items() if k in report.columns}
        log.add(state.step - 1, {**row, "lr_scale": state.lr_scale})
        bar.update(1)
        latest.update({k: v for k, v in row.items() if k in report.shown})
        if state.step % 10 == 0 or last:
            shown = {k: latest[k] for k in report.shown if k in latest}
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        if state.step % config.preview_every == 0 or last:
            report.preview(state)

    try:
        with peers_watched(job.world, run), job.stop.installed():
            state = loop(on_step)
    finally:
        bar.close()
        log.close()
    return state, measured


def stopped_early(step: int, steps: int, run: Path) -> RunResult:
    """Say where a stopped run's checkpoint is; the result of a run stopped before the end."""
    print(
        f"stopped at step {step}/{steps}; checkpoint saved in {run / 'checkpoint.pt'} "
        f"(continue with --resume)",
        file=sys.stderr,
    )
    return RunResult(None, run, step, True, {})


def style_record(style_dir: Path, styles: collection.Collection) -> dict[str, Any]:
    """What a model file says about the style set it learned from."""
    return {
        "fingerprint": styles.fingerprint,
        "images": len(styles.images),
        "folder_name": style_dir.resolve().name,
    }


#: Seconds a process of a torchrun job has, after torchrun's SIGTERM, to end by itself before
#: its watchdog ends it (torchrun kills it with SIGKILL, silently, after 30 s).
STOP_GRACE_S = 20.0


def _quiet_sigterm() -> None:
    """From here on SIGTERM does nothing but wake the watchdog (the process is ending anyway)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: None)


class _Watchdog:
    """Ends this process ``grace`` s after a SIGTERM if it has not ended by then, printing
    ``say`` (unless the command already printed its error line) and exiting with code 1.

    A Python signal handler only runs when the main thread is back in Python; a process blocked
    in a collective whose peer died, or in leaving the process group, never gets there. The
    watchdog learns of the signal from the wakeup file descriptor, which the interpreter writes
    the signal's number to as it arrives, so it needs a Python handler installed for SIGTERM
    (the stop request's, then :func:`_quiet_sigterm`'s). Main thread only."""

    def __init__(self, say: str, grace: float) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._cancelled = threading.Event()
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(
            target=self._watch, args=(say, grace), daemon=True, name="styleforge-watchdog"
        )
        self._thread.start()

    def _watch(self, say: str, grace: float) -> None:
        while signal.SIGTERM not in (arrived := os.read(self._read, 64)):
            if not arrived:
                return  # cancelled
        if self._cancelled.wait(grace):
            return  # the block ended by itself in time (a stop torchrun asked for)
        if not ERROR_PRINTED.is_set():
            print(f"styleforge: error: {say}", file=sys.stderr, flush=True)
        os._exit(EXIT_FAULT)

    def cancel(self) -> None:
        """Stop watching (the block ended by itself)."""
        self._cancelled.set()
        signal.set_wakeup_fd(self._previous)
        os.close(self._write)
        self._thread.join()
        os.close(self._read)


@contextmanager
def peers_watched(
    world: World, run_dir: Path, grace: float | None = STOP_GRACE_S
) -> Iterator[None]:
    """Under torchrun, turn the error a process gets when another one died (a collective that
    fails) into one line saying what to do; the checkpoint, written atomically by process 0
    only, is intact.

    Use it outside :meth:`StopRequest.installed`: torchrun sends SIGTERM to the survivors as soon
    as one process dies, so on this path SIGTERM is quietened from here on (the process is
    ending anyway); otherwise the default handler, restored on the way out, could kill the
    process before it has said why. And should a process still be running ``grace`` s after a
    SIGTERM (stuck in a collective or in leaving the process group), a watchdog says so and
    ends it, before torchrun would kill it without a word (``grace=None``: no watchdog)."""
    if not world.distributed:
        yield
        return
    resume = (
        f"The last checkpoint in {run_dir} is intact: run the same command with --resume "
        "(with any number of processes) to go on from it"
    )
    watchdog = None
    if grace is not None and threading.current_thread() is threading.main_thread():
        watchdog = _Watchdog(
            f"process {world.rank} of {world.size} was stopped by torchrun (another process "
            f"ended, or the job was interrupted) and had not ended {grace:g} s later, so it was "
            f"ended. {resume}",
            grace,
        )
    try:
        yield
    except RuntimeError as err:
        _quiet_sigterm()  # the watchdog stays: leaving the process group can block too
        raw = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        # gloo's "[.../pair.cc:553] Connection closed by peer [addr]:port. This is ..." -> the
        # first sentence, without the source location.
        reason = re.sub(r"^\[[^\]]*\]\s*", "", raw).split(". ")[0][:160]
        raise JobFailed(
            f"process {world.rank} of {world.size} lost the others ({reason}); the job "
            f"stopped. {resume}"
        ) from err
    except BaseException:
        if watchdog is not None:
            watchdog.cancel()
        raise
    if watchdog is not None:
        watchdog.cancel()
