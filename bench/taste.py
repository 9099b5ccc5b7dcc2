"""Taste benchmark (issue #15): does the preference search find a simulated user's taste?

A simulated user holds a hidden control vector t in the unit control space
(:data:`styleforge.taste.AXES`); its utility of a setting x is −‖x − t‖. Each round it sees the
grid of 8, scores every variant with that utility plus Gaussian noise, likes its 1–3 best and,
half the time, dislikes its worst. Over 10 seeds we report the fraction of the gap between the
default setting and the user's best (t itself, utility 0) that the recommendation recovers,
after 1, 3, 5 and 10 rounds, for the GP preference search and for random proposals (uniform
grids, recommended by the same preference model), and for the default setting (0 by
definition). Target: ≥ 80% after 5 rounds, random clearly less.

    .venv/bin/python bench/taste.py [--seeds 10] [--noise 0.05]

Pure numpy: no rendering, seconds on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from styleforge.infer.settings import Settings
from styleforge.taste import AXES, TasteSession
from styleforge.taste.space import from_vector, to_vector

ROUNDS = (1, 3, 5, 10)
VARIANTS = 8
TARGET = 0.8


@dataclass(frozen=True)
class SimulatedUser:
    """A hidden preference: a target vector (d,) in [0,1]^d and noisy picks."""

    target: np.ndarray
    noise: float
    rng: np.random.Generator

    def utility(self, look: Settings) -> float:
        """−distance to the hidden target in the unit control space."""
        return -float(np.linalg.norm(to_vector(look) - self.target))

    def pick(self, shown: list[Settings]) -> tuple[list[int], list[int]]:
        """(liked, disliked) 0-based: the 1–3 best by noisy utility; the worst half the time."""
        noisy = np.array([self.utility(c) for c in shown])
        noisy = noisy + self.noise * self.rng.standard_normal(len(shown))
        order = list(np.argsort(-noisy))
        k = int(self.rng.integers(1, 4))
        liked = [int(i) for i in order[:k]]
        disliked = [int(order[-1])] if self.rng.random() < 0.5 else []
        return liked, disliked


def make_user(seed: int, noise: float) -> SimulatedUser:
    """A seeded user whose target lies in the inner 80% of each axis."""
    rng = np.random.default_rng([seed, 15])
    target = 0.1 + 0.8 * rng.random(len(AXES))
    return SimulatedUser(target, noise, np.random.default_rng([seed, 16]))


def run_session(seed: int, noise: float, proposer: str, rounds: int = max(ROUNDS)) -> list[float]:
    """Recovered gap after each round (rounds,) for ``proposer`` 'gp' or 'random'."""
    user = make_user(seed, noise)
    session = TasteSession(seed=seed)
    default = user.utility(session.base)
    rng = np.random.default_rng([seed, 17])
    propose: Callable[[], list[Settings]]
    if proposer == "gp":
        propose = lambda: session.propose(VARIANTS)  # noqa: E731
    else:

        def propose() -> list[Settings]:
            grid = [from_vector(v) for v in rng.random((VARIANTS, len(AXES)))]
            session.pending = tuple(grid)
            return grid

    out = []
    for _ in range(rounds):
        shown = propose()
        session.record(*user.pick(shown))
        score = user.utility(session.recommendation())
        out.append((score - default) / (0.0 - default))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.05, help="pick noise (utility units)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = {
        name: np.array([run_session(s, args.noise, name) for s in range(args.seeds)])
        for name in ("gp", "random")
    }
    took = time.perf_counter() - start
    print(
        f"taste search, {args.seeds} seeds, {VARIANTS} variants a round, pick noise "
        f"{args.noise}: fraction of the default→best gap recovered (mean ± sd, [min])"
    )
    print(f"{'rounds':>8} | {'GP + EI':>20} | {'random proposals':>20} | {'default':>8}")
    for r in ROUNDS:
        cells = []
        for name in ("gp", "random"):
            col = table[name][:, r - 1]
            cells.append(f"{col.mean():5.0%} ± {col.std():3.0%} [{col.min():4.0%}]")
        print(f"{r:>8} | {cells[0]:>20} | {cells[1]:>20} | {0:>8.0%}")
    ours, rand = table["gp"][:, 4].mean(), table["random"][:, 4].mean()
    ok = ours >= TARGET and ours - rand >= 0.1
    print(f"({took:.1f} s)")
    print(
        f"{'PASS' if ok else 'FAIL'}: after 5 rounds GP recovers {ours:.0%} of the gap "
        f"(target ≥ {TARGET:.0%}), random {rand:.0%}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
