"""Readable reports of evaluations and training runs: a text table, a contact sheet, loss
curves read from a run's ``log.csv`` and one self-contained ``report.html`` (every image inline
as a data URI, nothing fetched). Their JSON is written by :func:`styleforge.fileio.write_json`."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from styleforge import images, sheets
from styleforge.fileio import read_csv_rows, row_step


def format_value(value: Any) -> str:
    """A figure for people: floats with 3 significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.3g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows of dicts as an aligned text table (see :func:`format_value`)."""
    body = [[format_value(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in body)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def contact_sheet(
    style_samples: Sequence[Tensor],
    pairs: Sequence[tuple[str, Tensor | None, Tensor]],
    h: int = 192,
) -> Tensor:
    """Style samples on top, then one row per result: photo | result (photo omitted if None).

    Every image is (1,3,H,W) in [0,1]; returns one (1,3,H',W') sheet on white.
    """
    rows = [sheets.make_sheet(list(style_samples)[:6], height=h // 2)] if style_samples else []
    for name, photo, result in pairs:
        shown = [photo, result] if photo is not None else [result]
        labels = [f"{name} (photo)", f"{name} (result)"] if photo is not None else [name]
        rows.append(sheets.make_sheet(shown, labels, height=h))
    if not rows:
        raise ValueError("nothing to put on the contact sheet")
    return sheets.stack_rows(rows)


def read_run_log(run_dir: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Loss curves of a training run: ``{name: (steps, values)}`` from ``run_dir/*.csv`` files
    with a ``step`` column (every other numeric column is a curve)."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for path in sorted(run_dir.glob("*.csv")):
        for row in read_csv_rows(path):
            add_log_row(curves, row)
    return curves


def add_log_row(
    curves: dict[str, tuple[list[float], list[float]]],
    row: Mapping[str, str | None],
    skip: Sequence[str] = ("step",),
) -> None:
    """Append one ``log.csv`` row's numbers to ``curves`` (column -> (steps, values)); rows
    without a step, empty cells, text and the ``skip`` columns are left out."""
    step = row_step(row)
    if step is None:
        return
    for key, raw in row.items():
        if key in skip or raw in (None, ""):
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        xs, ys = curves.setdefault(key, ([], []))
        xs.append(step)
        ys.append(value)


def plot_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> bytes:
    """PNG bytes of one small log-scale panel per curve (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.6 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        xs, ys = curves[name]
        ax.plot(xs, ys, lw=1)
        if all(y > 0 for y in ys):
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def tensor_png(image: Tensor) -> bytes:
    """PNG bytes of a (1,3,H,W) image."""
    buf = io.BytesIO()
    images.tensor_to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


def render_html(
    title: str,
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    sheet_png: bytes,
    curves_png: bytes | None = None,
    notes: Sequence[str] = (),
) -> str:
    """A single self-contained HTML page: summary, table, contact sheet, loss curves."""
    esc = html.escape

    def cell(value: Any) -> str:
        return esc(format_value(value))

    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    summary_items = "".join(f"<li><b>{esc(k)}</b>: {cell(v)}</li>" for k, v in summary.items())
    note_items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    curves = (
        f'<h2>Training curves</h2><img alt="loss curves" src="{_png_data_uri(curves_png)}">'
        if curves_png
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>{esc(title)}</h1>
<ul>{summary_items}</ul>
{"<ul>" + note_items + "</ul>" if note_items else ""}
<h2>Per image</h2>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Contact sheet</h2>
<img alt="contact sheet" src="{_png_data_uri(sheet_png)}">
{curves}
</body></html>
"""
