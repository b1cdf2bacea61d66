"""The match model: Fellegi-Sunter weights from a latent-class model learned by EM.

Fellegi-Sunter scores a pair with pattern g (one level per comparison) by the
m probabilities (how often duplicates show each level) against the u
probabilities (how often different customers do). Learned by EM on blocked
pairs with the usual two classes, it breaks on households: among blocked
non-duplicates, members of one household agree on surname, address, often
phone and e-mail all at once (they are not independent given "non-duplicate",
as Fellegi-Sunter assumes), so EM folds households into the duplicate class.

So the non-duplicates are modelled as three latent classes, related people
(sharing where they live and how they are reached), unrelated people
(strangers blocking brought together by first name and birth date or the
like) and namesakes (strangers with one surname, met by it), each with its
own level probabilities; within each class the comparisons are close to
independent, which is what the model assumes. EM (expectation-maximisation)
learns the four classes' shares and level probabilities from the unlabelled
blocked pairs, on the distinct patterns with their counts (a few thousand),
so it takes a few seconds. Which class is which is fixed by structural
constraints that say what the classes mean: duplicates never differ in both
first name and birth date (DUPLICATE_NEVER), two related people never share
both (RELATED_NEVER), strangers share no surname, contact point or id
(STRANGERS_NEVER), namesakes a surname only (NAMESAKES_NEVER); everything
else (every m and u, the shares) is learned.

    score = P(duplicate | g) = p_d m(g) / sum over the classes k of p_k k(g)

is the posterior probability. For the explanation each comparison's weight is
log2(m / u) with u the non-duplicates' level probabilities (related and
unrelated together, by their shares); match_weight is their sum. A comparison
one side lacks (MISSING) counts neither way.

Term frequencies. A learned model also carries how common each first name
(its first word) and surname is among the customers (Frequencies, counted
once per full scan from the data, engine.name_frequencies). They refine two
of the strangers' probabilities (the people blocking brought together by a
coincidence) for the pair at hand, in MatchModel.score:

- first name: EM learns how often strangers agree on it on average; for the
  value v they agree on that becomes u * f(v) / sum(f(w)^2), f the share of
  customers with that name: two strangers both bear v with probability
  f(v)^2 against a duplicate's f(v), and sum(f(w)^2) makes the adjustment
  average out to EM's u (the term-frequency adjustment of probabilistic
  linkage tools);
- surname: strangers share one only by chance (the structural constraint
  below), and the chance that someone else bears surname w is f(w): that is
  the probability of the level for this pair, in place of the floor. When
  they share the first name too, that chance is f(w) times how much likelier
  people with one first name are to share a surname than any two people
  (Frequencies.with_first, measured on the data: names go together by
  language and origin, so two Marcos are likelier than two strangers to both
  be Rossi). Namesakes, who met by their surname, share a common one more
  often than a rare one: their likelihood is multiplied by f(w) / sum(f^2)
  for the surname w they share, as the strangers' is for a first name.

So a stranger with the same common first name, surname and birth date (a
coincidence that grows with the data: there are more John Smiths born on one
day among a million customers than among a hundred thousand, and EM sees
more of them among the blocked pairs) explains such a pair about as well as
a duplicate does, and the pair scores low, while the same agreement on rare
names still scores as a duplicate. The duplicates' and the related people's
probabilities are not adjusted: a duplicate, or a household, shares a name
whatever the name is (the factor f(v) common to every class cancels). Models
without frequencies (the default model, older scans) score as before.

Where EM starts (only the start; it moves everything to what the data says):
duplicates mostly agree on every comparison; related people agree on all but
first name x birth date; unrelated people's levels are as common as among all
blocked pairs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .compare import COMPARISONS, LEVEL_COUNTS, MISSING, NO_COMMON, Common

# Below this a probability is clamped: a level never seen in one class must
# not become an infinite weight that no other evidence can outweigh.
FLOOR = 1e-5
EM_MAX_ITERATIONS = 200
EM_TOLERANCE = 1e-6
START_SHARES = (0.2, 0.2, 0.5, 0.1)  # duplicates, related, unrelated, namesakes
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
# And namesakes: strangers with one surname whom blocking brought together by
# it (the surname's sound with the birth date): they share the surname and
# nothing one reaches or identifies a person by, nor first name and birth
# date. Without this class EM has only the related people to explain them
# by, and in a large database, where common surnames meet often, "related"
# comes to mean "same surname, same birth date, different first name", which
# is also what a duplicate with a changed first name looks like at home.
NAMESAKES_NEVER = (*RELATED_NEVER, *((c, 0) for c in range(2, len(LEVEL_COUNTS))))
NAMESAKES = 3


# How many values per name a model keeps (the commonest); the others are
# rarer, and count as the average of the values left out.
FREQUENCY_VALUES = 5000


@dataclass
class Frequencies:
    """How common the values of one name are: counts of the commonest values,
    the average count of the others, the records counted, and sum(f^2) over
    all values (the chance that two strangers share one, on average;
    _pair_share)."""

    counts: dict[str, int]
    rest: float
    total: int
    squares: float
    # For surnames: how much likelier two people who share a first name are
    # to share a surname too than any two (names go together by language and
    # origin): sum over (first name, surname) of f^2, over the product of the
    # two names' sums of f^2. 1 when they are independent.
    with_first: float = 1.0

    @classmethod
    def from_counts(cls, counts: dict[str, int], *, keep: int = FREQUENCY_VALUES) -> Frequencies:
        total = sum(counts.values())
        squares = _pair_share(counts.values(), total)
        top = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:keep])
        left = len(counts) - len(top)
        rest = (total - sum(top.values())) / left if left else 1.0
        return cls(counts=top, rest=max(rest, 1.0), total=total, squares=squares)

    def share(self, value: str) -> float:
        """f(value): the share of the records with this value (at least one record)."""
        return min(1.0, self.counts.get(value, self.rest) / max(self.total, 1))

    def as_json(self) -> dict:
        return {
            "counts": self.counts,
            "rest": round(self.rest, 3),
            "total": self.total,
            "squares": self.squares,
            "with_first": self.with_first,
        }

    @classmethod
    def from_json(cls, data: dict) -> Frequencies:
        return cls(
            counts=dict(data["counts"]),
            rest=float(data["rest"]),
            total=int(data["total"]),
            squares=float(data["squares"]),
            with_first=float(data.get("with_first", 1.0)),
        )


def _pair_share(counts, total: int) -> float:
    """The share of pairs of two different records that share a value, from
    the counts of the values: sum n(n-1) / T(T-1) (unbiased on a sample, and
    a record is not its own pair)."""
    if total < 2:
        return 0.0
    return sum(n * (n - 1) for n in counts) / (total * (total - 1))


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
    # {"first": Frequencies, "last": Frequencies}, or None: no term frequencies.
    frequencies: dict[str, Frequencies] | None = None
    # The e-mails and phones too common to count as agreement (compare.Common):
    # the large blocks' keys of the scan that learned the model.
    common: Common = NO_COMMON
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    _tf_cache: dict = field(default_factory=dict, repr=False, compare=False)

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
        """(posterior probability of a duplicate, match weight) of a pattern,
        adjusted by the frequencies of the agreed names (pattern.names) when
        the model has them (see the module docstring)."""
        cached = self._cache.get(pattern)
        if cached is None:
            logs = [
                share + sum(probs[c][level] for c, level in enumerate(pattern) if level != MISSING)
                for share, probs in self._logs
            ]
            weight = sum(
                self.weights[c][level] for c, level in enumerate(pattern) if level != MISSING
            )
            cached = self._cache[pattern] = (logs, weight, _posterior(logs))
        logs, weight, posterior = cached
        if self.frequencies is None or pattern.__class__ is tuple:
            return posterior, weight
        adjust, bits = self.name_adjustment(pattern)
        if not adjust:
            return posterior, weight
        adjusted = logs.copy()
        adjusted[STRANGERS] += adjust
        if len(adjusted) > NAMESAKES:
            adjusted[NAMESAKES] += self._namesake_adjustment(pattern)
        return _posterior(adjusted), weight + bits

    def _namesake_adjustment(self, pattern: tuple[int, ...]) -> float:
        """Natural log of the factor on the namesakes' likelihood for the surname
        a pattern agrees on: namesakes meet by a surname, so the one they share
        is a common one f(w) / sum(f^2) times as often as on average (the first
        name's adjustment, for the surname)."""
        last = pattern.names[1] if pattern[1] == 0 else ""
        table = self.frequencies.get("last") if last else None
        if not table or table.squares <= 0:
            return 0.0
        key = ("namesake", last)
        factor = self._tf_cache.get(key)
        if factor is None:
            factor = self._tf_cache[key] = math.log(table.share(last) / table.squares)
        return factor

    def name_adjustment(self, pattern: tuple[int, ...]) -> tuple[float, float]:
        """(natural log of the factor on the strangers' likelihood, the match
        weight in bits the names' commonness adds: log2 of the old over the new
        u of the comparisons concerned) for the names a pattern agrees on;
        (0, 0) without frequencies, agreed names or a strangers class."""
        names = getattr(pattern, "names", None)
        if not names or not self.frequencies or len(self.classes) <= STRANGERS:
            return 0.0, 0.0
        first, last = names
        adjust = bits = 0.0
        if first and pattern[0] != MISSING:
            key = (pattern[0], first)
            part = self._tf_cache.get(key)
            if part is None:
                part = self._tf_cache[key] = self._first_adjustment(pattern[0], first)
            adjust, bits = part
        if last and pattern[1] == 0:
            key = (last, bool(first))
            part = self._tf_cache.get(key)
            if part is None:
                part = self._tf_cache[key] = self._last_adjustment(last, bool(first))
            adjust, bits = adjust + part[0], bits + part[1]
        return adjust, bits

    def _first_adjustment(self, level: int, first: str) -> tuple[float, float]:
        table = self.frequencies.get("first")
        if not table or table.squares <= 0:
            return 0.0, 0.0
        factor = table.share(first) / table.squares
        return math.log(factor), self._u_bits(0, level, factor)

    def _last_adjustment(self, last: str, with_first: bool) -> tuple[float, float]:
        table = self.frequencies.get("last")
        if not table:
            return 0.0, 0.0
        # In place of the floor the constraint put on the strangers' agreeing
        # surname: the chance that another person bears it.
        chance = min(1.0, table.share(last) * (table.with_first if with_first else 1.0))
        factor = chance / self.classes[STRANGERS]["probs"][1][0]
        return math.log(factor), self._u_bits(1, 0, factor)

    def _u_bits(self, comparison: int, level: int, factor: float) -> float:
        """log2(u / u'), u' the non-duplicates' probability of this level with
        the strangers' multiplied by factor."""
        others = self.classes[1:]
        old = sum(c["share"] * c["probs"][comparison][level] for c in others)
        strangers = self.classes[STRANGERS]
        new = old + strangers["share"] * strangers["probs"][comparison][level] * (factor - 1)
        return math.log2(old / new) if old > 0 and new > 0 else 0.0

    def as_json(self) -> dict:
        return {
            "classes": self.classes,
            "prior": self.prior,
            "threshold": self.threshold,
            "trained_on": self.trained_on,
            "iterations": self.iterations,
            "frequencies": (
                {name: table.as_json() for name, table in self.frequencies.items()}
                if self.frequencies
                else None
            ),
            "comparisons": [
                {
                    "name": name,
                    "levels": [
                        {
                            "label": label,
                            "m": round(self.m[c][i], 6),
                            "u": round(self.u[c][i], 6),
                            "weight": round(self.weights[c][i], 3),
                        }
                        for i, (label, _) in enumerate(levels)
                    ],
                }
                for c, (name, levels) in enumerate(COMPARISONS)
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> MatchModel | None:
        try:
            frequencies = data.get("frequencies") or None
            model = cls(
                classes=data["classes"],
                threshold=data["threshold"],
                trained_on=data.get("trained_on", 0),
                iterations=data.get("iterations", 0),
                frequencies=(
                    {name: Frequencies.from_json(table) for name, table in frequencies.items()}
                    if frequencies
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None
        if any([len(levels) for levels in c["probs"]] != LEVEL_COUNTS for c in model.classes):
            return None  # a model of an older set of comparisons
        model.common = Common.from_keys(data.get("large_keys") or ())
        return model


def _posterior(logs: list[float]) -> float:
    top = max(logs)
    exp = math.exp
    total = 0.0
    for value in logs:
        total += exp(value - top)
    return exp(logs[0] - top) / total


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
            [
                FLOOR if (c, level) in STRANGERS_NEVER else observed[c][level]
                for level in range(count)
            ]
        )
    # Namesakes start like strangers, but sharing the surname and differing
    # on first name x birth date as related people do.
    namesakes = [
        _normalise(
            [
                FLOOR if (c, level) in NAMESAKES_NEVER else observed[c][level]
                for level in range(count)
            ]
        )
        for c, count in enumerate(LEVEL_COUNTS)
    ]
    namesakes[PERSON] = list(related[PERSON])
    namesakes[1] = _top_heavy(LEVEL_COUNTS[1], START_TOP)
    return [
        {"share": START_SHARES[0], "probs": duplicates},
        {"share": START_SHARES[1], "probs": related},
        {"share": START_SHARES[2], "probs": strangers},
        {"share": START_SHARES[3], "probs": namesakes},
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
        for c, level in NAMESAKES_NEVER:
            acc[NAMESAKES][c][level] = 0.0
        new = [
            {
                "share": min(max(shares[j] / total, FLOOR), 1 - FLOOR),
                "probs": [_normalise(levels) for levels in acc[j]],
            }
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
