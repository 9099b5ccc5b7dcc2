"""Does watching a training job in the web page slow it down?

Serves the app on a free local port (as ``styleforge serve`` does), then trains the same
short stylizer job several times (after one warm-up run), alternately unwatched and
watched by a headless Chromium page on the Train tab (its timer looks at the job every
2 s), and prints the seconds a step takes in each run (the median time between log rows,
the first rows left out as warm-up) and the watched / unwatched ratio of each back-to-back
pair and of the medians.

Usage: ``.venv/bin/python bench/serve_watch.py [--steps 40] [--pairs 2]``
(needs Chromium: ``make browser``)
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

WARM_UP = 4  # rows left out: the first steps also load the networks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def step_times(log: Path, done: Any) -> list[float]:
    """Seconds between new rows of ``log`` until ``done()`` (the file's size looked at every
    0.05 s: a stat, next to nothing)."""
    seen: list[float] = []
    rows = 0
    while not done():
        try:
            count = log.read_bytes().count(b"\n") - 1 if log.is_file() else 0
        except OSError:
            count = rows
        now = time.perf_counter()
        seen += [now] * max(0, count - rows)
        rows = max(rows, count)
        time.sleep(0.05)
    return [b - a for a, b in zip(seen[WARM_UP:], seen[WARM_UP + 1 :], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps of each run (default 40)")
    parser.add_argument("--pairs", type=int, default=2, help="unwatched+watched runs (2)")
    args = parser.parse_args()

    import uvicorn
    from playwright.sync_api import sync_playwright

    from styleforge import images
    from styleforge.app.actions import App
    from styleforge.app.store import Store
    from styleforge.app.ui import server_config, web_app
    from styleforge.app.worker import Worker
    from styleforge.train.data import sample_photos

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("serve_watch: Chromium is needed (make browser)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pictures = [images.save_image(p, root / "up" / f"{name}.png")
                    for name, p in sample_photos().items()]  # fmt: skip
        store = Store(root / "data")
        worker = Worker(store, "cpu").start()
        app = App(store, worker)
        app.create_style("bench", pictures)
        style = store.styles()[0].id
        web, page_app = web_app(app)
        port = free_port()
        server = uvicorn.Server(server_config(web, "127.0.0.1", port))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.1)
        results: dict[str, list[float]] = {"unwatched": [], "watched": []}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox"])  # fmt: skip
                for mode in ["warm-up"] + ["unwatched", "watched"] * args.pairs:
                    job = app.start_training(style, "stylizer", "quick", args.steps)
                    page = None
                    if mode == "watched":
                        page = browser.new_page(viewport={"width": 1280, "height": 1000})
                        page.goto(f"http://127.0.0.1:{port}/")  # picks the newest job
                        page.get_by_role("tab", name="Train").click()
                    log = store.job(job).run_dir / "log.csv"
                    times = step_times(log, lambda j=job: store.job(j).status != "running"
                                       and store.job(j).status != "queued")  # fmt: skip
                    if page is not None:
                        page.close()
                    step = statistics.median(times)
                    results.setdefault(mode, []).append(step)
                    print(f"{mode:<10} {len(times) + WARM_UP + 1} rows, "
                          f"{step:.3f} s a step (median)", flush=True)  # fmt: skip
                browser.close()
        finally:
            server.should_exit = True
            worker.close()
            page_app.close()
        pairs = list(zip(results["unwatched"], results["watched"], strict=True))
        for i, (quiet, watched) in enumerate(pairs, 1):
            print(f"pair {i}: unwatched {quiet:.3f} s, watched {watched:.3f} s a step: "
                  f"watched / unwatched = {watched / quiet:.3f}")  # fmt: skip
        quiet, watched = (statistics.median(results[m]) for m in ("unwatched", "watched"))
        ratio = statistics.median([w / q for q, w in pairs])
        print(f"median: unwatched {quiet:.3f} s a step, watched {watched:.3f} s a step; "
              f"watched / unwatched {watched / quiet:.3f}, the pairs' median ratio "
              f"{ratio:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
