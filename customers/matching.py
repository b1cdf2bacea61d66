"""How alike two names are: one fuzzy matcher for watch-list screening and
duplicate detection.

Names are transliterated to Latin letters (anyascii: "Владимир Путин" ->
"Vladimir Putin"), then folded and split into words exactly as customer search
does (customers.search.fold), so "Sørensen-Özil", "sorensen ozil" and
"SORENSEN OZIL" are the same words. Two names are compared word by word in
whatever order gives the best pairing, so "Putin Vladimir" matches "Vladimir
Putin". A pair of words scores their spelling similarity (rapidfuzz), raised a
little when they sound alike by the metaphone keys search uses ("Mohammed" and
"Muhammad", "Smyth" and "Smith"). An initial matches the word it abbreviates;
numbers must be equal. Words only one name has (a middle name) cost a little
each, so "Vladimir Vladimirovich Putin" still matches "Vladimir Putin".
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import permutations

from anyascii import anyascii
from rapidfuzz import fuzz

from .search import fold, phonetic_key

# Words that sound the same score up to this much more than their spelling
# alone, and at most SOUND_ALIKE: metaphone drops vowels, so "John" and "Jane"
# share a key, and sound must not make them the same name.
SOUND_BOOST = 20.0
SOUND_ALIKE = 90.0
# "J" for "John".
INITIAL = 80.0
# Each word only one of the names has costs this much.
EXTRA_WORD_PENALTY = 6.0
# Beyond this many words, pairing is greedy instead of exhaustive (6! = 720).
EXHAUSTIVE_WORDS = 6
MIN_PHONETIC_WORD = 3


def name_words(name: str) -> list[str]:
    """The folded words of a name in any script: "Ørsted, Hans-Christian" ->
    ["orsted", "hans", "christian"]."""
    return fold(anyascii(name or "")).split()


def _word_similarity(a: str, b: str) -> float:
    if a == b:
        return 100.0
    if not (a.isalpha() and b.isalpha()):
        return 0.0  # "Studio 54" is not "Studio 55"
    if len(a) == 1 or len(b) == 1:
        return INITIAL if a[0] == b[0] else 0.0
    spelling = fuzz.ratio(a, b)
    if min(len(a), len(b)) >= MIN_PHONETIC_WORD and phonetic_key(a) == phonetic_key(b):
        return max(spelling, min(SOUND_ALIKE, spelling + SOUND_BOOST))
    return spelling


def _best_pairing(short: list[str], long: list[str]) -> float:
    """The highest total word similarity over ways to pair each word of `short`
    with a different word of `long`."""
    scores = [[_word_similarity(a, b) for b in long] for a in short]
    if len(long) <= EXHAUSTIVE_WORDS:
        return max(
            sum(scores[i][j] for i, j in enumerate(chosen))
            for chosen in permutations(range(len(long)), len(short))
        )
    total, used = 0.0, set()
    for row in scores:
        j = max((j for j in range(len(long)) if j not in used), key=row.__getitem__)
        used.add(j)
        total += row[j]
    return total


def words_similarity(a: list[str], b: list[str]) -> float:
    """name_similarity for names already split by name_words."""
    if not a or not b:
        return 0.0
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    paired = _best_pairing(short, long) / len(short)
    paired -= EXTRA_WORD_PENALTY * (len(long) - len(short))
    joined = 0.0
    if len(a) != len(b) and _digits(a) == _digits(b):
        # Spacing differences ("Mc Donald", "McDonald") defeat word pairing.
        joined = fuzz.ratio("".join(a), "".join(b))
    return round(max(paired, joined, 0.0), 1)


def _digits(words: list[str]) -> str:
    return "".join(sorted(ch for word in words for ch in word if ch.isdigit()))


def name_similarity(a: str, b: str) -> float:
    """How alike two personal or organisation names are, from 0.0 (nothing in
    common) to 100.0 (the same words, whatever their order, case, accents,
    punctuation or script).

    Tolerates word order ("Putin Vladimir"), transliteration and accents
    ("Vladimir Putin" vs "Владимир Путин", "Müller" vs "Muller"), spelling and
    sound-alike variants ("Jon Smyth" vs "John Smith"), initials ("J Smith")
    and a missing middle name at a small cost. Different first names with the
    same surname ("Jane Smith" vs "John Smith") score 85 at most.
    """
    return words_similarity(name_words(a), name_words(b))


def best_name_similarity(name: str, candidates: Iterable[str]) -> tuple[float, str]:
    """The best score of `name` against any of `candidates` (a name and its
    aliases), and the candidate that scored it; (0.0, "") when there are none."""
    best, best_candidate = 0.0, ""
    words = name_words(name)
    for candidate in candidates:
        score = words_similarity(words, name_words(candidate))
        if score > best:
            best, best_candidate = score, candidate
    return best, best_candidate
