"""Benchmark: styleforge's optimisation-based style transfer against a plain PyTorch loop.

Hand-run (``make bench`` or ``.venv/bin/python bench/transfer.py``); not part of the tests.

For each long-side size (256 and 512 px by default) it measures, on the CPU:

* seconds per optimisation step: one L-BFGS closure evaluation (clamp, forward through VGG16 up to
  relu5_1, content/style/TV loss, backward) plus the optimiser's own work between evaluations;
* peak resident memory (``ru_maxrss``) of the whole process, in MiB;

for styleforge's ``transfer()`` and for the "obvious" implementation a person would write from the
PyTorch neural-style tutorial (``nn.Sequential`` VGG, non-inplace ReLU, a Python loop collecting
the wanted layers, ``torch.optim.LBFGS([img], max_iter=steps)`` with a clamping closure), which
uses the same VGG16 weights, preprocessing, layers, loss definitions and weights.

Method. Every (implementation, size, repeat) runs in a fresh subprocess (this script with the
hidden ``--worker`` flag) so that the peak RSS belongs to that configuration alone. Both sides
load the weights the same way (``vgg16_state()``; styleforge's encoder is built with
``load_encoder`` and passed in as ``encoder=``) before the clock starts, so weight loading is
excluded from the time but included in the peak memory of both. Each closure evaluation is
time-stamped (styleforge: through the ``history`` list it appends every evaluation's terms to);
the first ``--warmup`` evaluations are discarded and the next ``--steps`` are timed. Both sides
run exactly warmup + steps closure evaluations. The implementations alternate (baseline,
styleforge, baseline, ...) and the whole sweep is repeated ``--repeats`` times; the table shows
the medians. The first loss value of both sides is compared as a check that they optimise the
same objective. ``torch`` keeps its default thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_CONTENT = "content/tubingen_neckarfront.jpg"
DEFAULT_STYLE = "style_images/starry_night.jpg"
IMPLS = ("baseline", "styleforge")
DEFAULT_SIZES = (256, 512)
DEFAULT_STEPS = {256: 20, 512: 10}
TARGET_RATIO = 1.0
BUSY_CPU_SHARE = 0.85  # below this, a run shared the cores with other work
IDLE_BELOW = 0.15  # before a run, wait until other work uses less than this share of the cores
RESULT_TAG = "BENCH_RESULT "
SETTINGS = (
    "content_weight",
    "style_weight",
    "tv_weight",
    "style_layers",
    "content_layer",
    "style_scale",
)

Record = dict[str, Any]


# --------------------------------------------------------------------------- worker side


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20  # KiB on Linux, B on macOS


Stamp = tuple[float, float]  # (wall clock, CPU time of all this process's threads)


def _stamp() -> Stamp:
    return time.perf_counter(), time.process_time()


class _StampedList(list[Any]):
    """A list that takes a :func:`_stamp` at every ``append`` (one per closure evaluation)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[Stamp] = []

    def append(self, item: Any) -> None:
        self.stamps.append(_stamp())
        super().append(item)


def _per_step(stamps: list[Stamp], warmup: int, steps: int, threads: int) -> Record:
    """Wall seconds per evaluation after the warm-up, how many were timed, and the CPU share.

    The CPU share is CPU time / (wall time x torch threads) over the timed window: near 1 on an
    otherwise idle machine, clearly lower when other processes competed for the cores.
    """
    timed = min(steps, len(stamps) - warmup)
    if warmup < 1 or timed < 1:
        raise RuntimeError(
            f"only {len(stamps)} closure evaluations for warm-up {warmup} + {steps} steps"
        )
    (wall0, cpu0), (wall1, cpu1) = stamps[warmup - 1], stamps[warmup + timed - 1]
    intervals = [b[0] - a[0] for a, b in zip(stamps[warmup - 1 :], stamps[warmup:], strict=False)]
    return {
        "s_per_step": (wall1 - wall0) / timed,
        "median_step_s": statistics.median(intervals[:timed]),
        "timed_steps": timed,
        "cpu_share": (cpu1 - cpu0) / ((wall1 - wall0) * threads),
    }


def _source_digest() -> str:
    """sha256 (first 12 hex digits) over the imported styleforge package's Python sources."""
    import styleforge

    root = Path(styleforge.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def default_settings() -> Record:
    """The loss settings of ``TransferConfig()``, read once by the driver for every worker.

    Both sides get them explicitly, so an edit of the defaults while the benchmark runs cannot
    make the two implementations optimise different objectives.
    """
    from styleforge.infer.transfer import TransferConfig

    cfg = TransferConfig()
    return {name: getattr(cfg, name) for name in SETTINGS}


def _run_styleforge(content: Any, style: Any, config: Any) -> tuple[list[Stamp], float, float]:
    """styleforge's transfer(); returns (evaluation time stamps, first loss, last loss)."""
    import torch

    from styleforge.features import load_encoder
    from styleforge.infer.transfer import transfer

    device = torch.device("cpu")
    encoder = load_encoder([*config.style_layers, config.content_layer], config.encoder, device)
    history = _StampedList()
    transfer(
        content, [style], config, device=device, encoder=encoder, progress=False, history=history
    )
    return history.stamps, float(history[0].total), float(history[-1].total)


def _run_baseline(content: Any, style: Any, config: Any) -> tuple[list[Stamp], float, float]:
    """The straightforward tutorial-style loop; returns (time stamps, first loss, last loss)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from styleforge.features.weights import vgg16_state
    from styleforge.images import resize_to

    # VGG16 up to relu5_1, as an nn.Sequential with the same (Caffe/ImageNet) weights.
    state = vgg16_state()
    layers: list[nn.Module] = []
    names: list[str] = []
    for block, n_convs in enumerate((2, 2, 3, 3, 1), start=1):
        for i in range(1, n_convs + 1):
            name = f"conv{block}_{i}"
            weight, bias = state[f"{name}.weight"], state[f"{name}.bias"]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=3, padding=1)
            conv.weight.data.copy_(weight)
            conv.bias.data.copy_(bias)  # type: ignore[union-attr]
            layers += [conv, nn.ReLU()]
            names += [name, f"relu{block}_{i}"]
        if block < 5:
            layers.append(nn.MaxPool2d(2, 2))
            names.append(f"pool{block}")
    del state
    model = nn.Sequential(*layers).eval().requires_grad_(False)
    mean_bgr = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    wanted = {*config.style_layers, config.content_layer}

    def features(img: torch.Tensor) -> dict[str, torch.Tensor]:
        x = img[:, [2, 1, 0]] * 255.0 - mean_bgr  # RGB [0,1] -> BGR [0,255] minus means
        out: dict[str, torch.Tensor] = {}
        for name, layer in zip(names, model, strict=True):
            x = layer(x)
            if name in wanted:
                out[name] = x
        return out

    def gram(f: torch.Tensor) -> torch.Tensor:
        n, c, h, w = f.shape
        flat = f.view(n, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)

    def tv(x: torch.Tensor) -> torch.Tensor:
        _, c, h, w = x.shape
        dv = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).sum()
        dh = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).sum()
        return (dv + dh) / (c * h * w)

    photo = resize_to(content, config.size)
    style_img = resize_to(style, max(16, round(config.size * config.style_scale)))
    with torch.no_grad():
        content_target = features(photo)[config.content_layer]
        style_feats = features(style_img)
        style_targets = [gram(style_feats[name]) for name in config.style_layers]
        del style_feats

    img = photo.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([img], max_iter=config.steps)
    stamps: list[Stamp] = []
    losses: list[float] = []

    def closure() -> torch.Tensor:
        with torch.no_grad():
            img.clamp_(0.0, 1.0)
        optimizer.zero_grad()
        feats = features(img)
        c_loss = F.mse_loss(feats[config.content_layer], content_target)
        s_loss = sum(
            (gram(feats[name]) - target).pow(2).sum()
            for name, target in zip(config.style_layers, style_targets, strict=True)
        ) / len(style_targets)
        loss = (
            config.content_weight * c_loss
            + config.style_weight * s_loss
            + config.tv_weight * tv(img)
        )
        loss.backward()
        stamps.append(_stamp())
        losses.append(loss.item())
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        img.clamp_(0.0, 1.0)
    return stamps, losses[0], losses[-1]


def worker(
    impl: str, size: int, steps: int, warmup: int, content: Path, style: Path, settings: Record
) -> Record:
    """One measurement in this (fresh) process."""
    import torch

    from styleforge.images import load_image
    from styleforge.infer.transfer import TransferConfig

    settings = {**settings, "style_layers": tuple(settings["style_layers"])}
    config = TransferConfig(size=size, steps=warmup + steps, optimizer="lbfgs", **settings)
    if len(config.scales()) != 1:
        raise SystemExit(f"--size {size} would run coarse-to-fine; benchmark one scale only")
    content_img, style_img = load_image(content), load_image(style)
    rss_setup = _peak_rss_mib()
    run = _run_styleforge if impl == "styleforge" else _run_baseline
    start = time.perf_counter()
    stamps, first_loss, last_loss = run(content_img, style_img, config)
    call_s = time.perf_counter() - start
    return {
        "impl": impl,
        "size": size,
        **_per_step(stamps, warmup, steps, torch.get_num_threads()),
        "evaluations": len(stamps),
        "call_s": call_s,
        "peak_rss_mib": _peak_rss_mib(),
        "peak_rss_setup_mib": rss_setup,
        "first_loss": first_loss,
        "last_loss": last_loss,
        "threads": torch.get_num_threads(),
        "styleforge_source": _source_digest(),
    }


# --------------------------------------------------------------------------- driver side


def _run_worker(impl: str, size: int, steps: int, args: argparse.Namespace) -> Record:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        impl,
        "--sizes",
        str(size),
        "--steps",
        str(steps),
        "--warmup",
        str(args.warmup),
        "--content",
        str(args.content),
        "--style",
        str(args.style),
        "--settings",
        json.dumps(args.settings),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker {impl} {size}px failed (exit {proc.returncode})")
    record: Record = json.loads(lines[-1][len(RESULT_TAG) :])
    return record


def _cpu_busy(interval: float = 2.0) -> float | None:
    """Fraction of all cores busy over ``interval`` seconds (Linux ``/proc/stat``), else None."""

    def snapshot() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(values), values[3] + values[4]  # all jiffies, idle + iowait

    try:
        total0, idle0 = snapshot()
        time.sleep(interval)
        total1, idle1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def _wait_for_idle(max_wait: float) -> None:
    """Wait (at most ``max_wait`` s) until other work uses less than IDLE_BELOW of the cores."""
    deadline = time.monotonic() + max_wait
    told = False
    while max_wait > 0:
        busy = _cpu_busy()
        if busy is None or busy < IDLE_BELOW:
            return
        if time.monotonic() >= deadline:
            print(f"    still busy after {max_wait:.0f} s; measuring anyway", flush=True)
            return
        if not told:
            print(
                f"    machine busy ({busy:.0%} of the cores used by other work), waiting",
                flush=True,
            )
            told = True
        time.sleep(10)


def _measure(impl: str, size: int, steps: int, args: argparse.Namespace) -> list[Record]:
    """Run one worker on an idle machine; rerun it (up to --retries) if others took the cores.

    Returns every attempt, the one to use last.
    """
    attempts: list[Record] = []
    for attempt in range(args.retries + 1):
        _wait_for_idle(args.max_wait)
        rec = _run_worker(impl, size, steps, args)
        attempts.append(rec)
        if rec["cpu_share"] >= BUSY_CPU_SHARE or attempt == args.retries:
            break
        print(
            f"    {size} px {impl}: {rec['s_per_step']:.3f} s/step with CPU share "
            f"{rec['cpu_share']:.2f} (other work competed); discarded, measuring again",
            flush=True,
        )
    return attempts


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def _summary(records: list[Record], sizes: list[int]) -> list[Record]:
    rows: list[Record] = []
    for size in sizes:
        row: Record = {"size": size}
        for impl in IMPLS:
            mine = [r for r in records if r["impl"] == impl and r["size"] == size]
            row[f"{impl}_s_per_step"] = statistics.median(r["s_per_step"] for r in mine)
            row[f"{impl}_peak_mib"] = statistics.median(r["peak_rss_mib"] for r in mine)
            row[f"{impl}_runs_s_per_step"] = [r["s_per_step"] for r in mine]
            row[f"{impl}_runs_cpu_share"] = [r["cpu_share"] for r in mine]
        row["time_ratio"] = _ratio(row["styleforge_s_per_step"], row["baseline_s_per_step"])
        row["memory_ratio"] = _ratio(row["styleforge_peak_mib"], row["baseline_peak_mib"])
        # Same inputs, weights and objective: the very first loss values must agree.
        firsts = [r["first_loss"] for r in records if r["size"] == size]
        ref = firsts[0]
        row["first_loss"] = ref
        row["first_loss_max_rel_diff"] = max(abs(v - ref) / max(abs(ref), 1e-30) for v in firsts)
        rows.append(row)
    return rows


def _table(rows: list[Record]) -> str:
    header = (
        "size | baseline s/step | styleforge s/step | ratio | "
        "baseline peak MiB | styleforge peak MiB | ratio"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['size']:>4} | {r['baseline_s_per_step']:>15.3f} | "
            f"{r['styleforge_s_per_step']:>17.3f} | {r['time_ratio']:>4.2f}x | "
            f"{r['baseline_peak_mib']:>17.0f} | {r['styleforge_peak_mib']:>19.0f} | "
            f"{r['memory_ratio']:>4.2f}x"
        )
    return "\n".join(lines)


def _spread(rows: list[Record]) -> float:
    """Largest relative spread (max/min - 1) between repeats of one implementation and size."""
    spreads = [
        max(runs) / min(runs) - 1.0
        for r in rows
        for impl in IMPLS
        if (runs := r[f"{impl}_runs_s_per_step"]) and min(runs) > 0
    ]
    return max(spreads, default=0.0)


def _verdict(rows: list[Record]) -> str:
    worst_t = max(rows, key=lambda r: r["time_ratio"])
    worst_m = max(rows, key=lambda r: r["memory_ratio"])
    t_ok = worst_t["time_ratio"] <= TARGET_RATIO
    m_ok = worst_m["memory_ratio"] <= TARGET_RATIO
    spread = _spread(rows)
    noise = ""
    if abs(worst_t["time_ratio"] - 1.0) <= spread:
        noise = f", within the {spread:.1%} spread between repeats of one implementation"
    parts = [
        f"time {'meets' if t_ok else 'MISSES'} it (worst {worst_t['time_ratio']:.2f}x at "
        f"{worst_t['size']} px{noise})",
        f"memory {'meets' if m_ok else 'MISSES'} it (worst {worst_m['memory_ratio']:.2f}x at "
        f"{worst_m['size']} px)",
    ]
    overall = "PASS" if t_ok and m_ok else "FAIL"
    return f"verdict vs the {TARGET_RATIO:.1f}x target (styleforge/baseline): {overall}: " + (
        "; ".join(parts)
    )


def _cpu_name() -> str:
    """The CPU model (Linux ``/proc/cpuinfo``), else whatever ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument(
        "--content", type=Path, help=f"content image (default DATA/{DEFAULT_CONTENT})"
    )
    parser.add_argument("--style", type=Path, help=f"style image (default DATA/{DEFAULT_STYLE})")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        help="timed steps, one per size or one for all (default 20 at 256 px, 10 at 512 px)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration (median)")
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="rerun a measurement this often when other work took the cores (default 2)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=300.0,
        help="wait up to this many seconds for an idle machine before each run (0: never)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--settings", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.content = args.content or args.data / DEFAULT_CONTENT
    args.style = args.style or args.data / DEFAULT_STYLE
    if args.steps is None:
        args.steps = [DEFAULT_STEPS.get(s, 10) for s in args.sizes]
    elif len(args.steps) == 1:
        args.steps = args.steps * len(args.sizes)
    if len(args.steps) != len(args.sizes):
        parser.error("--steps takes one value, or one per --sizes value")
    if args.warmup < 1 or args.repeats < 1 or min(args.steps) < 1:
        parser.error("--warmup, --repeats and --steps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.worker:
        record = worker(
            args.worker,
            args.sizes[0],
            args.steps[0],
            args.warmup,
            args.content,
            args.style,
            args.settings,
        )
        print(RESULT_TAG + json.dumps(record), flush=True)
        return 0

    for path in (args.content, args.style):
        if not path.is_file():
            raise SystemExit(f"{path}: no such image (see --data, --content, --style)")
    from styleforge.features.weights import vgg16_state

    vgg16_state()  # make sure the weights cache exists, so no worker pays the ONNX extraction
    args.settings = default_settings()
    source = _source_digest()

    import torch

    print(
        f"styleforge transfer benchmark: torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({_cpu_name()})"
    )
    print(
        f"content {args.content.name}, style {args.style.name}; warm-up {args.warmup} steps, "
        f"timed steps {dict(zip(args.sizes, args.steps, strict=True))}, "
        f"repeats {args.repeats}; encoder prebuilt (weight loading untimed, in peak RSS of both)"
    )
    weights = ", ".join(f"{k}={args.settings[k]}" for k in SETTINGS[:3])
    print(f"TransferConfig defaults used by both sides: {weights}; styleforge source {source}")
    load_before = os.getloadavg()[0]
    records: list[Record] = []
    discarded: list[Record] = []
    for repeat in range(args.repeats):
        for size, steps in zip(args.sizes, args.steps, strict=True):
            for impl in IMPLS:
                *dropped, rec = _measure(impl, size, steps, args)
                for r in (*dropped, rec):
                    r["repeat"] = repeat
                discarded += dropped
                records.append(rec)
                print(
                    f"  [{repeat + 1}/{args.repeats}] {size:>4} px {impl:<10} "
                    f"{rec['s_per_step']:.3f} s/step over {rec['timed_steps']} steps "
                    f"(CPU share {rec['cpu_share']:.2f}, {rec['evaluations']} evaluations, "
                    f"call {rec['call_s']:.1f} s), peak {rec['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
    load_after = os.getloadavg()[0]
    rows = _summary(records, args.sizes)
    print()
    print(_table(rows))
    print()
    checks = ", ".join(f"{r['size']} px {r['first_loss_max_rel_diff']:.1e}" for r in rows)
    print(f"same-objective check, max relative difference of the first loss: {checks}")
    print(f"1-min load average: {load_before:.2f} before, {load_after:.2f} after")
    warnings = []
    if any(r["first_loss_max_rel_diff"] > 1e-4 for r in rows):
        warnings.append("the two sides did not start from the same loss: not like for like")
    if {r["styleforge_source"] for r in records} != {source}:
        warnings.append("styleforge's source changed while the benchmark ran")
    busy = [r for r in records if r["cpu_share"] < BUSY_CPU_SHARE]
    if busy:
        warnings.append(
            f"{len(busy)} run(s) got less than {BUSY_CPU_SHARE:.0%} of the cores (other load "
            "on the machine); their times are inflated, consider a rerun"
        )
    if discarded:
        print(f"{len(discarded)} run(s) discarded and rerun because other work took the cores")
    for warning in warnings:
        print(f"WARNING: {warning}")
    print(_verdict(rows))
    if args.json:
        payload = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "content": str(args.content),
            "style": str(args.style),
            "warmup": args.warmup,
            "repeats": args.repeats,
            "target_ratio": TARGET_RATIO,
            "settings": args.settings,
            "styleforge_source": source,
            "warnings": warnings,
            "load_average": [load_before, load_after],
            "summary": rows,
            "runs": records,
            "discarded_runs": discarded,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
