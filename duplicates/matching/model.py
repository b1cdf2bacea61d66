"""The match model: Fellegi-Sunter weights from a latent-class model learned by EM.

Fellegi-Sunter scores a pair with pattern g (one level per comparison) by the
m probabilities (how often duplicates show each level) against the u
probabilities (how often different customers do). Learned by EM on blocked
pairs with the usual two classes, it breaks on households: among blocked
non-duplicates, members of one household agree on surname, address, often
phone and e-mail all at once (they are not independent given "non-duplicate",
as Fellegi-Sunter assumes), so EM folds households into the duplicate class.

So the non-duplicates are modelled as two latent classes, related people
(sharing where they live and how they are reached) and unrelated people,
each with its own level probabilities; within each class the comparisons are
close to independent, which is what the model assumes. EM (expectation-
maximisation) learns the three classes' shares and level probabilities from
the unlabelled blocked pairs, on the distinct patterns with their counts (a
few thousand), so it takes a few seconds. Which class is the duplicates is
fixed by two structural constraints that say what the classes mean:
duplicates never differ in both first name and birth date (DUPLICATE_NEVER),
two related people never share both (RELATED_NEVER); everything else (every
m and u, the shares) is learned.

    score = P(duplicate | g) = p_d m(g) / (p_d m(g) + p_r r(g) + p_o o(g))

is the posterior probability. For the explanation each comparison's weight is
log2(m / u) with u the non-duplicates' level probabilities (related and
unrelated together, by their shares); match_weight is their sum. A comparison
one side lacks (MISSING) counts neither way.

Where EM starts (only the start; it moves everything to what the data says):
duplicates mostly agree on every comparison; related people agree on all but
first name x birth date; unrelated people's levels are as common as among all
blocked pairs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .compare import COMPARISONS, LEVEL_COUNTS, MISSING

# Below this a probability is clamped: a level never seen in one class must
# not become an infinite weight that no other evidence can outweigh.
FLOOR = 1e-5
EM_MAX_ITERATIONS = 200
EM_TOLERANCE = 1e-6
START_SHARES = (0.2, 0.2, 0.6)  # duplicates, related, unrelated
START_TOP = 0.8
PERSON = 0  # index of the first name x birth date comparison
# The one constraint that tells EM which class is the duplicates: a duplicate
# is never a record whose first name and birth date both differ (level 7 of
# first name x birth date). Without it, EM is free to call any strong cluster
# of agreement "the matches", and at scale it picks households or neighbours
# (agreeing on address and phone) as readily as duplicates.
DUPLICATE_NEVER = ((PERSON, 7),)
# And its mirror for the related class: two different people of one household
# never share both first name and birth date, nor have them both nearly equal
# (levels 0-2); without it EM lets "related" absorb the duplicates that moved
# house or changed their phone.
RELATED_NEVER = ((PERSON, 0), (PERSON, 1), (PERSON, 2))
RELATED = 1
# And strangers: people whom blocking brought together by one coincidence (the
# same first name and birth date, the same postcode) and who share nothing
# else: never the same surname, e-mail, phone, address or national id. Without
# this class, EM explains those coincidences as duplicates (they are common
# among blocked pairs, rare among random ones).
STRANGERS_NEVER = tuple((c, 0) for c in range(1, len(LEVEL_COUNTS)))
STRANGERS = 2


def _normalise(values: list[float]) -> list[float]:
    values = [max(v, FLOOR) for v in values]
    total = sum(values)
    return [v / total for v in values]


@dataclass
class MatchModel:
    """classes[0] is the duplicates: {"share": p, "probs": [[level probs] per comparison]}."""

    classes: list[dict]
    threshold: float
    trained_on: int = 0  # pairs
    iterations: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.m = self.classes[0]["probs"]
        others = self.classes[1:]
        rest = sum(c["share"] for c in others) or 1.0
        self.u = [
            [sum(c["share"] * c["probs"][i][lvl] for c in others) / rest for lvl in range(n)]
            for i, n in enumerate(LEVEL_COUNTS)
        ]
        self.prior = self.classes[0]["share"]
        self.weights = [
            [math.log2(mv / uv) for mv, uv in zip(mc, uc, strict=True)]
            for mc, uc in zip(self.m, self.u, strict=True)
        ]
        self._logs = [
            (math.log(c["share"]), [[math.log(p) for p in levels] for levels in c["probs"]])
            for c in self.classes
        ]

    def score(self, pattern: tuple[int, ...]) -> tuple[float, float]:
        """(posterior probability of a duplicate, match weight) of a pattern."""
        cached = self._cache.get(pattern)
        if cached is None:
            logs = [
                share + sum(probs[c][level] for c, level in enumerate(pattern) if level != MISSING)
                for share, probs in self._logs
            ]
            top = max(logs)
            total = sum(math.exp(v - top) for v in logs)
            posterior = math.exp(logs[0] - top) / total
            weight = sum(
                self.weights[c][level] for c, level in enumerate(pattern) if level != MISSING
            )
            cached = self._cache[pattern] = (posterior, weight)
        return cached

    def as_json(self) -> dict:
        return {
            "classes": self.classes,
            "prior": self.prior,
            "threshold": self.threshold,
            "trained_on": self.trained_on,
            "iterations": self.iterations,
            "comparisons": [
                {
                    "name": name,
                    "levels": [
                        {"label": label, "m": round(self.m[c][i], 6), "u": round(self.u[c][i], 6),
                         "weight": round(self.weights[c][i], 3)}
                        for i, (label, _) in enumerate(levels)
                    ],
                }
                for c, (name, levels) in enumerate(COMPARISONS)
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> MatchModel | None:
        try:
            model = cls(
                classes=data["classes"], threshold=data["threshold"],
                trained_on=data.get("trained_on", 0), iterations=data.get("iterations", 0),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        if any([len(levels) for levels in c["probs"]] != LEVEL_COUNTS for c in model.classes):
            return None  # a model of an older set of comparisons
        return model


def _top_heavy(count: int, top: float) -> list[float]:
    rest = (1 - top) / max(1, count - 1)
    return _normalise([top] + [rest * (count - i) / count for i in range(1, count)])


def _start(patterns: Counter) -> list[dict]:
    observed = []
    for c, count in enumerate(LEVEL_COUNTS):
        seen = [1.0] * count
        for pattern, n in patterns.items():
            if pattern[c] != MISSING:
                seen[pattern[c]] += n
        observed.append(_normalise(seen))
    duplicates = [_top_heavy(n, START_TOP) for n in LEVEL_COUNTS]
    for c, level in DUPLICATE_NEVER:
        duplicates[c][level] = FLOOR
    related = [_top_heavy(n, START_TOP) for n in LEVEL_COUNTS]
    # Related people differ on first name x birth date (levels from 4 on).
    related[PERSON] = _normalise([0.01 if level < 4 else 1.0 for level in range(LEVEL_COUNTS[0])])
    for c, level in RELATED_NEVER:
        related[c][level] = FLOOR
    strangers = [_normalise([1.0] * n) for n in LEVEL_COUNTS]
    for c, level in STRANGERS_NEVER:
        strangers[c][level] = FLOOR
    for c, count in enumerate(LEVEL_COUNTS):
        # Strangers start where all blocked pairs are, minus what they never do.
        strangers[c] = _normalise(
            [FLOOR if (c, level) in STRANGERS_NEVER else observed[c][level]
             for level in range(count)]
        )
    return [
        {"share": START_SHARES[0], "probs": duplicates},
        {"share": START_SHARES[1], "probs": related},
        {"share": START_SHARES[2], "probs": strangers},
    ]


def em_learn(patterns: Counter, *, threshold: float) -> MatchModel:
    """Learn the classes' shares and level probabilities from the patterns of
    blocked pairs (pattern -> count)."""
    items = list(patterns.items())
    total = sum(n for _, n in items) or 1
    classes = _start(patterns)
    iteration = 0
    for iteration in range(1, EM_MAX_ITERATIONS + 1):  # noqa: B007
        acc = [[[0.0] * n for n in LEVEL_COUNTS] for _ in classes]
        shares = [0.0] * len(classes)
        for pattern, n in items:
            likelihoods = []
            for k in classes:
                value = k["share"]
                probs = k["probs"]
                for c, level in enumerate(pattern):
                    if level != MISSING:
                        value *= probs[c][level]
                likelihoods.append(value)
            norm = sum(likelihoods) or 1.0
            for j, value in enumerate(likelihoods):
                weight = n * value / norm
                shares[j] += weight
                row = acc[j]
                for c, level in enumerate(pattern):
                    if level != MISSING:
                        row[c][level] += weight
        for c, level in DUPLICATE_NEVER:
            acc[0][c][level] = 0.0
        for c, level in RELATED_NEVER:
            acc[RELATED][c][level] = 0.0
        for c, level in STRANGERS_NEVER:
            acc[STRANGERS][c][level] = 0.0
        new = [
            {"share": min(max(shares[j] / total, FLOOR), 1 - FLOOR),
             "probs": [_normalise(levels) for levels in acc[j]]}
            for j in range(len(classes))
        ]
        change = max(
            abs(a - b)
            for old, cur in zip(classes, new, strict=True)
            for ol, nl in zip(old["probs"], cur["probs"], strict=True)
            for a, b in zip(ol, nl, strict=True)
        )
        classes = new
        if change < EM_TOLERANCE:
            break
    return MatchModel(classes=classes, threshold=threshold, trained_on=total, iterations=iteration)
