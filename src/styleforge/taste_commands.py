"""``styleforge tune`` and the taste ``apply`` uses: parsed arguments -> :mod:`styleforge.taste`.

A model's taste is one metadata entry of its safetensors file (:data:`TASTE_KEY`: the JSON of
:meth:`TasteSession.to_dict`); writing it rewrites the file atomically with the same tensors.
Reading it for ``apply`` touches only the header (no torch), so it costs nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from styleforge import images
from styleforge.errors import UserError
from styleforge.infer.apply import ApplyOptions, RunBatch, stylize_array
from styleforge.taste import Controls, TasteSession, stored_recommendation

#: The metadata key of a model's taste record.
TASTE_KEY = "taste"
#: How a round's picks are typed: numbers liked, ``-N`` disliked, by spaces or commas.
PICKS_HELP = "numbers you like, -N for one you dislike (e.g. '2 5 -7'); Enter alone finishes"

Picks = tuple[list[int], list[int]]


def _note(message: str) -> None:
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------- the record


def taste_text(model: Path) -> str | None:
    """The taste entry of a model file's header as stored, ``None`` when it has none (or the
    file is unreadable: loading it reports that in its own words)."""
    from safetensors import safe_open

    try:
        with safe_open(str(model), framework="numpy") as fh:
            return (fh.metadata() or {}).get(TASTE_KEY)
    except Exception:  # safetensors raises its own error types for bad headers
        return None


def read_taste_record(model: Path) -> dict[str, Any] | None:
    """A model file's taste record (JSON-decoded, not yet validated), ``None`` when it has
    none. A record that is not JSON is a :class:`UserError`."""
    text = taste_text(model)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise UserError(f"{model}: damaged taste record: not JSON{_fix_hint(model)}") from None
    return data if isinstance(data, dict) else {"format": None}


def _fix_hint(model: Path) -> str:
    return (
        f" (`styleforge tune {model} --reset` removes it, tune --restart replaces it, "
        "apply --no-taste ignores it)"
    )


def load_session(model: Path, record: dict[str, Any]) -> TasteSession:
    """The session a record holds; a damaged one is a one-line :class:`UserError`."""
    try:
        return TasteSession.from_dict(record)
    except UserError as err:
        raise UserError(f"{model}: {err}{_fix_hint(model)}") from None


def model_taste(model: Path) -> Controls | None:
    """The recommended controls stored in ``model`` (``None``: no taste)."""
    record = read_taste_record(model)
    if record is None:
        return None
    try:
        return stored_recommendation(record)
    except UserError as err:
        raise UserError(f"{model}: {err}{_fix_hint(model)}") from None


def write_taste(model: Path, session: TasteSession | None) -> Path:
    """Store ``session`` as ``model``'s taste (``None``: remove it), atomically; the tensors and
    every other metadata entry stay as they were."""
    from safetensors.torch import save

    from styleforge.fileio import atomic_write
    from styleforge.infer.model_file import MODEL_FORMAT, read_safetensors

    tensors, meta = read_safetensors(model)
    if meta.get("format") != MODEL_FORMAT:
        raise UserError(f"{model}: not a styleforge stylizer model (.safetensors from train)")
    meta = dict(meta)
    if session is None:
        meta.pop(TASTE_KEY, None)
    else:
        meta[TASTE_KEY] = json.dumps(session.to_dict())
    data = save(tensors, metadata=meta)
    with atomic_write(model, ".safetensors") as tmp:
        tmp.write_bytes(data)
    return model


# --------------------------------------------------------------------------- apply


def apply_options(args: argparse.Namespace, model: Path | None) -> ApplyOptions:
    """``apply``'s options: the model's taste unless ``--no-taste``, explicit flags over it."""
    taste = None
    if model is not None and model.suffix.lower() == ".safetensors" and not args.no_taste:
        taste = model_taste(model)
    base = taste or Controls()
    colors = 1.0 if args.preserve_colors else args.color_amount
    options = ApplyOptions(
        strength=base.strength if args.strength is None else args.strength,
        preserve_colors=base.colors if colors is None else colors,
        paint_size=(taste.paint_size if taste else None) if args.paint_size is None
        else args.paint_size,
        tone=base.tone if args.tone is None else args.tone,
        max_size=args.max_size, tile=args.tile, overlap=args.overlap, batch=args.batch,
    )  # fmt: skip
    if taste is not None:
        _note(f"{model}: using its taste ({taste.describe()}); --no-taste ignores it")
    return options


# --------------------------------------------------------------------------- picks


def parse_picks(text: str, n: int) -> Picks:
    """One round's picks ``'2 5 -7'`` / ``'2,5,-7'`` (1-based) -> 0-based (liked, disliked).

    Raises a :class:`UserError` for a bad token, a number out of range, an empty round or a
    number picked twice."""
    liked: list[int] = []
    disliked: list[int] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        if not re.fullmatch(r"-?\d+", token):
            raise UserError(f"{token!r} is not a pick: {PICKS_HELP}")
        number = abs(int(token))
        if not 1 <= number <= n:
            raise UserError(f"pick {number} is out of range: the grid shows 1 to {n}")
        (disliked if token.startswith("-") else liked).append(number - 1)
    if not liked and not disliked:
        raise UserError("an empty round: pick at least one number you like (or -N to dislike)")
    if set(liked) & set(disliked):
        raise UserError(f"{min(set(liked) & set(disliked)) + 1} is both liked and disliked")
    if len(set(liked)) < len(liked) or len(set(disliked)) < len(disliked):
        raise UserError("a number is picked twice in one round")
    return liked, disliked


def parse_all_picks(text: str, n: int) -> list[Picks]:
    """``--picks '1,3;2 -5'``: rounds separated by ``;`` (each checked by :func:`parse_picks`)."""
    rounds = []
    for i, part in enumerate(text.split(";"), 1):
        try:
            rounds.append(parse_picks(part, n))
        except UserError as err:
            raise UserError(f"--picks round {i}: {err}") from None
    return rounds


def ask_picks(n: int, read: Callable[[str], str] = input) -> Picks | None:
    """Ask in the terminal until the picks parse; ``None`` on Enter alone or end of input."""
    while True:
        try:
            line = read(f"picks ({PICKS_HELP}): ")
        except EOFError:
            return None
        if not line.strip():
            return None
        try:
            return parse_picks(line, n)
        except UserError as err:
            _note(f"  {err}; try again")


# --------------------------------------------------------------------------- rendering


def render_round(
    run_batch: RunBatch, photos: Sequence[np.ndarray], variants: Sequence[Controls],
    paint_scale: float = 1.0,
) -> list[list[np.ndarray]]:  # fmt: skip
    """Each (1,3,H,W) photo restyled with each variant: [photo][variant] -> (1,3,H,W).

    ``paint_scale`` < 1 previews photos shrunk by that factor as they would look at full
    size: each variant's paint size is scaled alike (the web app's small thumbnails)."""
    options = [c.to_options() for c in variants]
    if paint_scale != 1.0:
        options = [
            replace(o, paint_size=max(16, round(c.paint_size * paint_scale)))
            for o, c in zip(options, variants, strict=True)
        ]
    return [[stylize_array(run_batch, p, o) for o in options] for p in photos]


def grid_sheet(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], height: int) -> Any:
    """One labelled row per photo, stacked: -> (1,3,H,W) tensor (for ``images.save_image``)."""
    import torch

    sheets = [
        images.make_sheet([torch.from_numpy(x) for x in row], list(labels), height=height)
        for row in rows
    ]
    return images.stack_rows(sheets)


# --------------------------------------------------------------------------- tune


def _check_model(model: Path) -> None:
    if not model.is_file():
        raise UserError(f"{model}: no such model file")
    if model.suffix.lower() != ".safetensors":
        raise UserError(f"{model}: tune writes the taste into a .safetensors model file")


def _show(model: Path, record: dict[str, Any] | None) -> int:
    if record is None:
        raise UserError(f"{model} has no taste yet; run `styleforge tune {model} PHOTOS...`")
    session = load_session(model, record)
    taste = stored_recommendation(record)
    print(f"{model}: taste from {len(session.rounds)} round(s): {taste.describe()}")
    return 0


def run_tune(args: argparse.Namespace) -> int:
    """``styleforge tune MODEL PHOTOS...``: rounds of picks -> the model's stored taste."""
    model: Path = args.model
    _check_model(model)
    if args.reset:  # also the way out of a damaged record
        if taste_text(model) is None:
            raise UserError(f"{model} has no taste to reset")
        write_taste(model, None)
        _note(f"{model}: taste removed; apply restyles with the plain defaults")
        return 0
    if args.show:
        return _show(model, read_taste_record(model))
    if not args.photos:
        raise UserError("give the photo(s) to judge the variants on")
    refined = _refine_target(args) if args.refine else None
    n = args.variants
    scripted = None if args.picks is None else parse_all_picks(args.picks, n)
    record = None if args.restart else read_taste_record(model)
    session = TasteSession(seed=args.seed) if record is None else load_session(model, record)
    max_pixels = int(args.max_pixels or images.DEFAULT_MAX_PIXELS)
    photos = [
        images.downscale_to(
            images.pil_to_array(images.open_image(p, max_pixels=max_pixels)), args.size
        )
        for p in args.photos
    ]
    from styleforge.infer.stylizer import Stylizer

    run_batch = Stylizer.load(model, args.device).backend()
    out_dir: Path = args.out or model.with_suffix(".tune")
    done = 0
    while scripted is None or done < len(scripted):
        number = len(session.rounds) + 1
        variants = session.propose(n)
        rows = render_round(run_batch, photos, variants)
        labels = [str(i) for i in range(1, n + 1)]
        sheet = images.save_image(
            grid_sheet(rows, labels, args.thumb), out_dir / f"round-{number:02d}.png"
        )
        print(f"round {number}: {sheet}")
        if not args.quiet:
            for i, c in enumerate(variants, 1):
                _note(f"  {i}: {c.describe()}")
        picks = scripted[done] if scripted is not None else ask_picks(n)
        if picks is None:
            break
        session.record(*picks)
        write_taste(model, session)  # after every round: an interruption loses nothing
        done += 1
    if refined is not None:
        _refine(args, model, refined, session, run_batch, photos)
    if not done:
        if refined is None:
            _note(f"no picks: {model} is unchanged")
        return 0
    taste = session.recommendation()
    renders = render_round(run_batch, photos, [Controls(), taste])
    rows = [[p, *row] for p, row in zip(photos, renders, strict=True)]
    after = images.save_image(
        grid_sheet(rows, ["photo", "default", "your taste"], args.thumb), out_dir / "taste.png"
    )
    print(f"{model}: taste saved after {len(session.rounds)} round(s): {taste.describe()}")
    _note(f"before/after: {after}; `styleforge apply` uses it, --no-taste ignores it")
    return 0


# --------------------------------------------------------------------------- refine

#: At most this many liked (and disliked) renders join a refine: the most recent rounds'.
REFINE_MAX_RENDERS = 24


def _refine_target(args: argparse.Namespace) -> Path:
    """The refined model's path, checked before any round is shown."""
    model: Path = args.model
    if args.style is None:
        raise UserError("--refine needs --style DIR: the style folder the model learned")
    if not args.style.is_dir():
        raise UserError(f"{args.style}: no such style folder")
    target: Path = args.refined or model.with_name(f"{model.stem}-refined.safetensors")
    if target.resolve() == model.resolve():
        raise UserError(f"{target}: refine writes a new model; the original is never overwritten")
    if target.exists() and not args.overwrite:
        raise UserError(f"{target} exists; pass --overwrite to replace it or --refined PATH")
    return target


def pick_renders(
    run_batch: RunBatch, photos: Sequence[np.ndarray], session: TasteSession
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every liked and every disliked variant of all rounds, restyled on ``photos`` ((1,3,H,W)
    each): -> (liked, disliked) lists of (1,3,H,W) arrays, the most recent first, each at most
    :data:`REFINE_MAX_RENDERS` long."""
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for rnd in reversed(session.rounds):
        for renders, picked in zip(out, (rnd.liked, rnd.disliked), strict=True):
            for i in picked:
                if len(renders) < REFINE_MAX_RENDERS:
                    options = rnd.shown[i].to_options()
                    renders.extend(stylize_array(run_batch, p, options) for p in photos)
    return out[0][:REFINE_MAX_RENDERS], out[1][:REFINE_MAX_RENDERS]


def _refine(
    args: argparse.Namespace, model: Path, target: Path, session: TasteSession,
    run_batch: RunBatch, photos: Sequence[np.ndarray],
) -> None:  # fmt: skip
    """Fine-tune ``model`` toward the session's picks into ``target`` (with the session as its
    taste)."""
    import torch

    from styleforge.train.refine import RefineConfig, refine_model

    config = RefineConfig(steps=args.refine_steps)  # checked before the renders
    liked, disliked = pick_renders(run_batch, photos, session)
    if not liked:
        raise UserError("nothing liked yet: like a few variants before --refine")
    _note(f"refining on {len(liked)} liked and {len(disliked)} disliked results "
          f"({config.steps} steps)...")  # fmt: skip
    as_tensors = [[torch.from_numpy(np.ascontiguousarray(x)) for x in group]
                  for group in (liked, disliked, photos)]  # fmt: skip
    refine_model(
        model, target, args.style, *as_tensors, config=config,
        record={"rounds": len(session.rounds)}, device=args.device,
        max_pixels=int(args.max_pixels or images.DEFAULT_MAX_PIXELS),
    )  # fmt: skip
    write_taste(target, session)
    print(f"wrote {target} (refined from {model.name} on your picks; its taste is yours)")
