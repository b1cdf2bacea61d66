"""Clusters: candidates that would chain different people into one merge.

Candidates are pairs, but merges chain: if A~B and B~C are both proposed, the
review page shows A, B and C as one cluster and a steward merges them into
one survivor. When B is ambiguous (a duplicate of A that also looks like A's
son C, say), the two pairs can each be likely while A and C, compared
directly, are clearly two people. Then at most one of the two pairs is right.

So after every scan the candidates are joined into clusters with a rule:
pairs are taken best score first, and a pair that would put two customers
into one cluster who must stay apart is held. Two customers must stay apart
when a steward marked them "not a duplicate", when they cannot be one
customer at all (a person and an organisation), or when the model, comparing
them directly, finds them no more likely the same than the threshold finds a
proposed pair likely (score below 1 - threshold: the same confidence that
proposes a pair keeps two customers apart). This is greedy clustering with
cannot-link constraints, as entity resolution tools do it.

A held pair stays a candidate a steward can review and merge as a pair; its
`conflict` says why it is held, and the review page does not chain clusters
through it (selectors.duplicate_candidate_cluster). Clusters of two need no
check, so the work is bounded by the customers in clusters of three or more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .matching.engine import pair_score, profiles_load
from .matching.model import MatchModel
from .models import DuplicateCandidate

PROPOSED = (DuplicateCandidate.Status.OPEN, DuplicateCandidate.Status.SKIPPED)
CONFLICT = "Held apart: it would put #{x} and #{y} in one cluster, who are {why}."
CONFLICT_MAX = 255


def candidates_reconcile(*, model: MatchModel, touching: Iterable[int] | None = None) -> int:
    """Set or clear the `conflict` of the proposed candidates at or above the
    threshold; only the clusters that hold a customer of `touching` when given
    (an incremental scan's customers). Returns the pairs held."""
    edges = list(
        DuplicateCandidate.objects.filter(status__in=PROPOSED, score__gte=model.threshold)
        .order_by("-score", "id")
        .values_list("id", "customer_a_id", "customer_b_id", "score", "conflict")
    )
    clusters = cluster_roots((a, b) for _, a, b, _, _ in edges)
    if touching is not None:
        touched = {clusters[i] for i in touching if i in clusters}
        clusters = {i: root for i, root in clusters.items() if root in touched}
    members: dict[int, list[int]] = defaultdict(list)
    for customer_id, root in clusters.items():
        members[root].append(customer_id)
    checked = {i for ids in members.values() if len(ids) > 2 for i in ids}
    apart = _Apart(model, checked, {(a, b) for _, a, b, _, _ in edges})
    joined: dict[int, set[int]] = {}
    held: dict[int, str] = {}
    for pk, a, b, _, _ in edges:
        if a not in checked:
            continue
        side_a, side_b = joined.setdefault(a, {a}), joined.setdefault(b, {b})
        if side_a is side_b:
            continue
        reason = apart.any_between(side_a, side_b)
        if reason:
            held[pk] = reason[:CONFLICT_MAX]
            continue
        union = side_a | side_b
        for customer_id in union:
            joined[customer_id] = union
    changed = [
        (pk, held.get(pk, ""))
        for pk, a, _, _, conflict in edges
        if a in clusters and conflict != held.get(pk, "")
    ]
    by_reason: dict[str, list[int]] = defaultdict(list)
    for pk, reason in changed:
        by_reason[reason].append(pk)
    # A derived flag (like the clusters themselves), recomputed by every scan:
    # not history, which records what the matcher and the stewards decided.
    for reason, ids in by_reason.items():
        for start in range(0, len(ids), 5000):
            DuplicateCandidate.objects.filter(id__in=ids[start : start + 5000]).update(
                conflict=reason
            )
    return len(held)


def cluster_roots(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """customer id -> its cluster's root (connected components, union-find)."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while (up := parent.setdefault(x, x)) != x:
            parent[x] = parent[up]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
    return {x: root(x) for x in parent}


class _Apart:
    """Whether two customers must stay apart, and why (cached per pair)."""

    def __init__(self, model: MatchModel, customer_ids: set[int], proposed: set) -> None:
        self.model, self.proposed = model, proposed
        self.profiles = profiles_load(customer_ids) if customer_ids else {}
        self.rejected = _rejected_pairs(customer_ids)
        self.cache: dict[tuple[int, int], str] = {}

    def any_between(self, side_a: set[int], side_b: set[int]) -> str:
        for x in side_a:
            for y in side_b:
                reason = self.why(min(x, y), max(x, y))
                if reason:
                    return reason
        return ""

    def why(self, x: int, y: int) -> str:
        pair = (x, y)
        if pair in self.proposed:
            return ""
        reason = self.cache.get(pair)
        if reason is None:
            reason = self.cache[pair] = self._why(x, y)
        return reason

    def _why(self, x: int, y: int) -> str:
        if (x, y) in self.rejected:
            return CONFLICT.format(x=x, y=y, why="marked not a duplicate")
        a, b = self.profiles.get(x), self.profiles.get(y)
        if a is None or b is None:
            return ""  # no profile (merged since): nothing to say
        scored = pair_score(self.model, a, b)
        if scored is None:
            return CONFLICT.format(x=x, y=y, why="a person and an organisation")
        if scored[0] < 1 - self.model.threshold:
            return CONFLICT.format(x=x, y=y, why=f"scored {scored[0]:.2f} alike")
        return ""


def _rejected_pairs(customer_ids: set[int]) -> set[tuple[int, int]]:
    """The pairs among these customers a steward marked "not a duplicate": all
    such decisions read at once (stewards' decisions are few next to the
    customers; a filter by thousands of ids costs more than reading them)."""
    if not customer_ids:
        return set()
    return {
        (a, b)
        for a, b in DuplicateCandidate.objects.filter(
            status=DuplicateCandidate.Status.NOT_DUPLICATE
        )
        .values_list("customer_a_id", "customer_b_id")
        .iterator(chunk_size=10_000)
        if a in customer_ids and b in customer_ids
    }
