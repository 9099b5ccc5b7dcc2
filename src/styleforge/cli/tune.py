"""``styleforge tune``: rounds of picks among variants of your photos -> the model's stored taste
(:mod:`styleforge.taste.record`), and ``--refine``: a model fine-tuned toward the picks."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from styleforge.cli.common import Subparsers, add_common, at_least_2, max_pixels, note, positive_int
from styleforge.errors import UserError
from styleforge.taste.rounds import PICKS_HELP, Picks, parse_picks

if TYPE_CHECKING:
    import numpy as np

    from styleforge.infer.restyle import Restyler
    from styleforge.infer.settings import Settings
    from styleforge.taste import TasteSession


def add_parser(sub: Subparsers) -> None:
    """The ``tune`` sub-command and its flags."""
    tu = sub.add_parser(
        "tune",
        help="rounds of picks among variants of your photos; apply then follows your taste",
        description="Show a numbered grid of variants of the photos (strength, stroke scale, "
        f"colours kept, tone) and type the ones you like: {PICKS_HELP}. The first variant of "
        "each later round is your taste so far: pick something else first only if you like it "
        "better. The next grids close in on the look you point at (a model of your ideal look "
        "that measures closeness as the pictures differ). After every round the model file's "
        "taste is updated (same weights): your favourite of the last round, never a look you "
        "have not seen; `apply` uses it unless --no-taste. Running tune again continues the "
        "rounds stored in the model.",
    )  # fmt: skip
    tu.add_argument("model", type=Path, help="model file (.safetensors) from `styleforge train`")
    tu.add_argument("photos", nargs="*", type=Path, help="one to a few photos to judge on")
    tu.add_argument("-n", "--variants", type=at_least_2, default=8, help="per round (8)")
    tu.add_argument(
        "--picks", metavar="'1,3;2 -5'",
        help="the rounds' picks without asking, rounds separated by ';' (for scripts)",
    )  # fmt: skip
    tu.add_argument(
        "--size", type=positive_int, default=512,
        help="long side the photos are restyled at (512; bigger shows stroke scale better)",
    )  # fmt: skip
    tu.add_argument("--thumb", type=positive_int, default=192, help="grid row height (192)")
    tu.add_argument("--out", type=Path, help="folder for the grids (default MODEL.tune/)")
    tu.add_argument("--restart", action="store_true", help="forget the stored rounds, start over")
    tu.add_argument("--show", action="store_true", help="print the stored taste and stop")
    tu.add_argument("--reset", action="store_true", help="remove the stored taste and stop")
    tu.add_argument("--quiet", "-q", action="store_true", help="do not list each variant")
    _add_refine(tu)
    add_common(tu)


def _add_refine(tu: argparse.ArgumentParser) -> None:
    tu.add_argument(
        "--refine", action="store_true",
        help="after the rounds, fine-tune the model toward what you liked (a new model file; "
        "needs --style)",
    )  # fmt: skip
    tu.add_argument("--style", type=Path, help="with --refine: the style folder it learned")
    tu.add_argument(
        "--refined",
        type=Path,
        metavar="PATH",
        help="with --refine: the new model (default MODEL-refined.safetensors)",
    )
    tu.add_argument(
        "--refine-steps", type=positive_int, default=150,
        help="with --refine: training steps (150: about 2 minutes on a 2-core CPU)",
    )  # fmt: skip
    tu.add_argument("--overwrite", action="store_true", help="with --refine: replace --refined")


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
            note(f"  {err}; try again")


def _check_model(model: Path) -> None:
    if not model.is_file():
        raise UserError(f"{model}: no such model file")
    if model.suffix.lower() != ".safetensors":
        raise UserError(f"{model}: tune writes the taste into a .safetensors model file")


def _reset(model: Path) -> int:
    from styleforge.taste.record import has_taste, write_taste

    if not has_taste(model):
        raise UserError(f"{model} has no taste to reset")
    write_taste(model, None)
    note(f"{model}: taste removed; apply restyles with the plain defaults")
    return 0


def _show(model: Path) -> int:
    from styleforge.infer.header import read_taste
    from styleforge.taste.record import read_session

    session = read_session(model)
    taste = read_taste(model)
    if session is None or taste is None:
        raise UserError(f"{model} has no taste yet; run `styleforge tune {model} PHOTOS...`")
    print(f"{model}: taste from {len(session.rounds)} round(s): {taste.describe()}")
    return 0


def run(args: argparse.Namespace) -> int:
    """``styleforge tune MODEL PHOTOS...``: rounds of picks -> the model's stored taste."""
    from styleforge import images
    from styleforge.infer.restyle import Restyler
    from styleforge.taste import TasteSession
    from styleforge.taste.record import read_session, write_taste
    from styleforge.taste.rounds import parse_all_picks, play_rounds, taste_sheet

    model: Path = args.model
    _check_model(model)
    if args.reset:  # also the way out of a damaged record
        return _reset(model)
    if args.show:
        return _show(model)
    if not args.photos:
        raise UserError("give the photo(s) to judge the variants on")
    refined = _refine_target(args) if args.refine else None
    scripted = None if args.picks is None else parse_all_picks(args.picks, args.variants)
    stored = None if args.restart else read_session(model)
    session = stored or TasteSession(seed=args.seed)
    limit = max_pixels(args)
    photos = [
        images.downscale_to(images.pil_to_array(images.open_image(p, max_pixels=limit)), args.size)
        for p in args.photos
    ]
    # The variants set every look setting: the stored taste plays no part in them. onnxruntime
    # on a CPU: the export is kept under a key the taste written each round leaves alone.
    restyler = Restyler.open(model, device=args.device, use_taste=False)
    out_dir: Path = args.out or model.with_suffix(".tune")
    asked = iter(scripted) if scripted is not None else None

    def ask(number: int, shown: list[Settings], sheet: Path) -> Picks | None:
        advice = session.advice()
        if advice:
            note(f"{advice}: the four controls may be as close as this look gets. More like "
                 f"this one: `styleforge tune {model} PHOTOS --refine --style DIR` learns your "
                 "liked results as an extra style target (a new model)")  # fmt: skip
        print(f"round {number}: {sheet}")
        if not args.quiet:
            for i, c in enumerate(shown, 1):
                note(f"  {i}: {c.describe()}")
        return ask_picks(len(shown)) if asked is None else next(asked)

    done = play_rounds(
        session, restyler, photos, out_dir, ask, variants=args.variants, thumb=args.thumb,
        after_round=lambda s: write_taste(model, s),
        limit=None if scripted is None else len(scripted),
    )  # fmt: skip
    if refined is not None:
        _refine(args, refined, session, restyler, photos)
    if not done:
        if refined is None:
            note(f"no picks: {model} is unchanged")
        return 0
    after = taste_sheet(session, restyler, photos, out_dir / "taste.png", args.thumb)
    taste = session.recommendation()
    print(f"{model}: taste saved after {len(session.rounds)} round(s): {taste.describe()}")
    note(f"before/after: {after}; `styleforge apply` uses it, --no-taste ignores it")
    return 0


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


def _refine(
    args: argparse.Namespace, target: Path, session: TasteSession, restyler: Restyler,
    photos: Sequence[np.ndarray],
) -> None:  # fmt: skip
    """Fine-tune the model toward the session's picks into ``target`` (with the session as its
    taste)."""
    from styleforge.taste.refine import refine_on_picks

    def starting(liked: int, disliked: int) -> None:
        note(f"refining on {liked} liked and {disliked} disliked results "
             f"({args.refine_steps} steps)...")  # fmt: skip

    refine_on_picks(
        args.model, target, args.style, session, restyler, photos, steps=args.refine_steps,
        device=args.device, max_pixels=max_pixels(args), starting=starting,
    )  # fmt: skip
    print(f"wrote {target} (refined from {args.model.name} on your picks; its taste is yours)")
