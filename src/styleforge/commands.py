"""What each CLI command does with its parsed arguments: gather inputs, build a config, call the
library, write outputs. Kept apart from argument parsing so both stay short."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from styleforge import collection, images
from styleforge.errors import EXIT_OK, EXIT_PARTIAL, UserError
from styleforge.features import EncoderSpec, load_encoder
from styleforge.infer.apply import ApplySummary, failure_reason
from styleforge.infer.transfer import TransferConfig, transfer
from styleforge.runtime import pick_device

ASSETS = Path(__file__).parent / "assets"


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _max_pixels(args: argparse.Namespace) -> int:
    return int(args.max_pixels or images.DEFAULT_MAX_PIXELS)


def gather_images(
    paths: Sequence[Path], what: str, max_pixels: int
) -> tuple[list[Path], list[Path]]:
    """(files named directly plus the usable images of named folders, files of those folders
    with an image suffix left out as unusable); the audit goes to stderr. Duplicates do not
    count as left out: they are used once."""
    found: list[Path] = []
    left_out: list[Path] = []
    for path in paths:
        if path.is_dir():
            coll = collection.scan(path, max_pixels=max_pixels)
            if coll.skipped or coll.duplicates:
                _note(coll.report())
            coll.require(1, what)
            found.extend(coll.images)
            # Files without an image suffix are not inputs; an image that fails to load is.
            suffixes = collection.IMAGE_SUFFIXES
            left_out.extend(s.path for s in coll.skipped if s.path.suffix.lower() in suffixes)
        elif path.exists():
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or folder")
    return found, left_out


def output_paths(inputs: Sequence[Path], output: Path, overwrite: bool) -> list[Path]:
    """One output per input: ``output`` itself for a single input with an image suffix,
    else ``output/<input stem>.png``. Existing files are refused unless ``overwrite``."""
    single_file = len(inputs) == 1 and output.suffix.lower() in images.SAVE_FORMATS
    if single_file:
        outs = [output]
    else:
        if (
            output.exists() and not output.is_dir()
        ) or output.suffix.lower() in images.SAVE_FORMATS:
            raise UserError(f"-o {output}: {len(inputs)} photos need an output folder, not a file")
        stems = [p.stem for p in inputs]
        if len(set(stems)) != len(stems):
            # Same name in different folders: keep the parent folder name to tell them apart.
            stems = [f"{p.parent.name}_{p.stem}" for p in inputs]
        outs = [output / f"{stem}.png" for stem in stems]
    existing = [p for p in outs if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists (use --overwrite to replace it)")
    return outs


def run_transfer(args: argparse.Namespace) -> int:
    """``styleforge transfer``."""
    max_pixels = _max_pixels(args)
    device = pick_device(args.device)
    contents, left_out = gather_images(args.content, "transfer", max_pixels)
    if args.style_weights is not None and len(args.style_weights) != len(args.style):
        raise UserError(
            f"--style-weights has {len(args.style_weights)} value(s) for {len(args.style)} --style"
        )
    if args.style_weights is not None and sum(args.style_weights) <= 0:
        raise UserError("--style-weights must not all be zero")
    if args.encoder == "vgg16" and args.encoder_weights is not None:
        raise UserError("--encoder-weights is for --encoder vgg19 (vgg16 weights are built in)")
    styles: list[Tensor] = []
    weights: list[float] = []
    for i, style_path in enumerate(args.style):
        files, _ = gather_images([style_path], "a style", max_pixels)  # fewer styles still work
        share = (args.style_weights[i] if args.style_weights else 1.0) / len(files)
        styles += [images.load_image(f, max_pixels=max_pixels) for f in files]
        weights += [share] * len(files)
    config = TransferConfig(
        size=args.size,
        steps=args.steps,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        style_scale=args.style_scale,
        preserve_colors=args.preserve_colors,
        init=args.init,
        optimizer=args.optimizer,
        seed=args.seed,
        encoder=EncoderSpec(args.encoder, args.encoder_weights),
    )
    outputs = output_paths(contents, args.output, args.overwrite)
    encoder = load_encoder([*config.style_layers, config.content_layer], config.encoder, device)
    summary = ApplySummary(failed=[(p, "not a usable image (see above)") for p in left_out])
    for src, out in zip(contents, outputs, strict=True):
        try:
            photo = images.load_image(src, max_pixels=max_pixels)
        except UserError as err:  # one photo that does not load fails alone
            if len(contents) == 1 and not left_out:
                raise  # the only photo: one line, exit 2
            summary.failed.append((src, failure_reason(src, err)))
            _note(f"failed {src}: {summary.failed[-1][1]}")
            continue
        result = transfer(
            photo, styles, config, weights, device, encoder=encoder, progress=not args.quiet
        )
        summary.done.append(images.save_image(result, out))
        _note(f"{src} -> {out}")
    if summary.failed:
        _note(summary.line("transferred"))
    return summary.exit_code


def run_demo(args: argparse.Namespace) -> int:
    """``styleforge demo``: learn the embedded Hokusai prints with a small training budget,
    restyle the sample photos, write the model, the results and a contact sheet; then train a
    sampler on the same prints and write a grid of new images (``--sampler-steps 0`` skips it)."""
    import shutil

    from styleforge import prior
    from styleforge.infer.stylizer import Stylizer
    from styleforge.train.config import StylizerTrainConfig
    from styleforge.train.data import sample_photos
    from styleforge.train.stylizer import describe_stylizer, train_stylizer

    out_dir: Path = args.output
    style_dir: Path = args.style or ASSETS / "hokusai_fuji"
    config = StylizerTrainConfig.preset("quick").with_overrides(steps=args.steps, seed=args.seed)
    model = out_dir / "model.safetensors"
    run_dir = out_dir / "run"
    if run_dir.exists():  # the demo's own earlier run: start afresh
        shutil.rmtree(run_dir)
    _note(f"learning the style of {style_dir} ({config.steps} steps; the full quick preset "
          f"is {StylizerTrainConfig.preset('quick').steps})")  # fmt: skip
    result = train_stylizer(
        config, style_dir, model, run_dir=run_dir, device=args.device,
        progress=not args.quiet, max_pixels=_max_pixels(args),
    )  # fmt: skip
    if result.stopped_early:
        return 130
    _note(describe_stylizer(result))
    stylizer = Stylizer.load(model, args.device)
    pictures = [images.open_image(p) for p in collection.scan(style_dir).images]
    preview = Stylizer(prior.painter_for(pictures), stylizer.info, stylizer.device)
    labels = ["photo", "no training (apply --style-from)", "trained (styleforge apply)"]
    rows: list[Tensor] = []
    for name, photo in sample_photos().items():
        styled = stylizer(photo)
        path = images.save_image(styled, out_dir / f"{name}.png")
        _note(f"wrote {path}")
        rows.append(images.make_sheet([photo, preview(photo), styled], labels))
    width = max(r.shape[-1] for r in rows)
    strip = images.collection_strip([images.pil_to_tensor(p) for p in pictures], width, 160)
    sheet = images.save_image(images.stack_rows([strip, *rows]), out_dir / "sheet.png")
    _note(f"wrote {sheet} (the prints, then photo | preview | restyled)")
    if args.sampler_steps == 0:
        return 0
    return _demo_sampler(args, style_dir, out_dir)


def _demo_sampler(args: argparse.Namespace, style_dir: Path, out_dir: Path) -> int:
    """The demo's second half: a sampler with a demo budget, and a grid of new images."""
    import shutil

    from styleforge.infer.sampler import Sampler
    from styleforge.train.config import SamplerTrainConfig
    from styleforge.train.sampler import describe_sampler, train_sampler

    quick = SamplerTrainConfig.preset("quick")
    steps = args.sampler_steps
    config = quick.with_overrides(steps=steps, seed=args.seed, kid_every=steps)
    run_dir = out_dir / "sampler_run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    _note(f"learning to draw new images like {style_dir} ({config.steps} steps; the full quick "
          f"preset is {quick.steps})")  # fmt: skip
    path = out_dir / "sampler.safetensors"
    result = train_sampler(
        config, style_dir, path, run_dir=run_dir, device=args.device,
        progress=not args.quiet, max_pixels=_max_pixels(args),
    )  # fmt: skip
    if result.stopped_early:
        return 130
    _note(describe_sampler(result))
    batch = Sampler.load(path, args.device).sample(range(16))
    grid = images.save_image(images.grid(batch, cols=4), out_dir / "dream_grid.png")
    _note(f"wrote {grid} (16 new images, seeds 0-15; more with `styleforge generate {path}`)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """``styleforge evaluate``: table on stdout (or JSON), report files in ``-o``."""
    from styleforge import report
    from styleforge.metrics.evaluate import COLUMNS, evaluate
    from styleforge.metrics.features import EvalSettings

    max_pixels = _max_pixels(args)
    if not args.style.exists():
        raise UserError(f"{args.style}: no such file or folder")
    results, left_out = gather_images(args.results, "evaluate", max_pixels)
    photos = gather_images([args.content], "evaluate", max_pixels)[0] if args.content else None
    if args.run is not None and not args.run.is_dir():
        raise UserError(f"{args.run}: no such training run folder")
    device = pick_device(args.device)
    ev = evaluate(args.style, results, photos, EvalSettings(size=args.size), device)
    columns = [c for c in (*COLUMNS, "nn_ratio") if any(c in row for row in ev.rows)]
    if args.json:
        import json

        print(json.dumps(report.json_safe({"summary": ev.summary, "rows": ev.rows}), indent=2))
    else:
        print(report.format_table(ev.rows, columns))
        print()
        for key, value in ev.summary.items():
            print(f"{key}: {report.format_value(value)}")
        for note in ev.notes:
            print(note)
    out: Path = args.output
    report.write_json(
        out / "metrics.json", {"summary": ev.summary, "rows": ev.rows, "notes": ev.notes}
    )
    show = args.size
    samples = [images.load_image(p, size=show // 2) for p in ev.style_images[:6]]
    pairs = [
        (name, images.load_image(p, size=show) if p else None, images.load_image(r, size=show))
        for name, p, r in ev.pairs
    ]
    sheet = report.contact_sheet(samples, pairs, h=show)
    images.save_image(sheet, out / "contact_sheet.png")
    curves = report.plot_curves(report.read_run_log(args.run)) if args.run else None
    if args.run and curves is None:
        ev.notes.append(f"{args.run}: no loss curves found (no CSV with a step column)")
    page = report.render_html(
        "styleforge evaluation", ev.summary, ev.rows, columns, report.tensor_png(sheet), curves,
        ev.notes,
    )  # fmt: skip
    report.write_text_atomic(out / "report.html", page)
    _note(f"wrote {out / 'report.html'}, {out / 'metrics.json'}, {out / 'contact_sheet.png'}")
    if left_out:  # the figures stand for the usable results only: a script must be able to tell
        _note(f"evaluated {len(results)} result(s); {len(left_out)} left out (listed above)")
        return EXIT_PARTIAL
    return EXIT_OK
