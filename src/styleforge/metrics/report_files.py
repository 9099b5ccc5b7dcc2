"""What ``styleforge evaluate`` shows and writes: the table of an :class:`Evaluation`, and its
report folder (``metrics.json``, ``contact_sheet.png``, ``report.html``)."""

from __future__ import annotations

import json
from pathlib import Path

from styleforge import fileio, images
from styleforge.metrics import report
from styleforge.metrics.evaluate import COLUMNS, Evaluation

__all__ = ["evaluation_columns", "evaluation_text", "write_evaluation"]


def evaluation_columns(ev: Evaluation) -> list[str]:
    """The table's columns: those of :data:`COLUMNS` (and ``nn_ratio``) some row has."""
    return [c for c in (*COLUMNS, "nn_ratio") if any(c in row for row in ev.rows)]


def evaluation_text(ev: Evaluation, as_json: bool = False) -> str:
    """The figures as a table, the summary and the notes (or as JSON)."""
    if as_json:
        return json.dumps(fileio.json_safe({"summary": ev.summary, "rows": ev.rows}), indent=2)
    lines = [report.format_table(ev.rows, evaluation_columns(ev)), ""]
    lines += [f"{key}: {report.format_value(value)}" for key, value in ev.summary.items()]
    return "\n".join([*lines, *ev.notes])


def write_evaluation(ev: Evaluation, out: Path, size: int, run: Path | None = None) -> list[Path]:
    """Write the report folder ``out``: the figures, a contact sheet (style samples, then photo
    and result side by side at height ``size``) and an HTML page with both, plus the loss
    curves of the training ``run`` folder when given (a note says when it has none). Returns
    the files written."""
    files = [fileio.write_json(
        out / "metrics.json", {"summary": ev.summary, "rows": ev.rows, "notes": ev.notes}
    )]  # fmt: skip
    samples = [images.load_image(p, size=size // 2) for p in ev.style_images[:6]]
    pairs = [
        (name, images.load_image(p, size=size) if p else None, images.load_image(r, size=size))
        for name, p, r in ev.pairs
    ]
    sheet = report.contact_sheet(samples, pairs, h=size)
    files.append(images.save_image(sheet, out / "contact_sheet.png"))
    curves = report.plot_curves(report.read_run_log(run)) if run else None
    if run and curves is None:
        ev.notes.append(f"{run}: no loss curves found (no CSV with a step column)")
    page = report.render_html(
        "styleforge evaluation", ev.summary, ev.rows, evaluation_columns(ev),
        report.tensor_png(sheet), curves, ev.notes,
    )  # fmt: skip
    files.insert(0, fileio.write_text_atomic(out / "report.html", page))
    return files
