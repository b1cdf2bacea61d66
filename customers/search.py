"""Finding a customer from what a support rep half remembers.

Names are folded (case, accents, punctuation) and split into words; each word
is stored in CustomerSearchToken, and once, with its metaphone key, in the
dictionary of words (SearchWord). A query word matches a customer's word by
prefix ("ingr" finds Ingrid), by sound ("Jon Smyth" finds John Smith: the words
keyed like "smyth", then their customers) or by one typo ("Smtih", "Smitg":
the dictionary's words one edit away, then their customers); every query word
must match. Emails, E.164 phones, source ids and national ids are looked up
exactly through their own indexes.

Why by hand: no library offers accent- and typo-tolerant name search that runs
on both SQLite and PostgreSQL with plain indexes; jellyfish gives the phonetic
keys and rapidfuzz the edit distances and the final ranking.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING

import jellyfish
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from rapidfuzz.distance import OSA

if TYPE_CHECKING:
    from .models import Customer

_NOT_WORD = re.compile(r"[^0-9a-z]+")
# Letters NFKD does not decompose into a base letter plus an accent.
_FOLD_EXTRA = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ß": "ss",
        "đ": "d",
        "ł": "l",
        "þ": "th",
        "ð": "d",
        chr(0x131): "i",
    }
)
MAX_QUERY_WORDS = 5
_WORD_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789"


def fold(text: str) -> str:
    """Lower-case, strip accents and punctuation: "Sørensen-Özil" -> "sorensen ozil"."""
    text = (text or "").lower()
    if not text.isascii():
        # ASCII has no accents to strip: most names skip the per-character pass.
        text = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def words(text: str) -> list[str]:
    return fold(text).split()


# Metaphone keeps distinctions people blur when they mistype a name: "Jhon"
# (JHN) and "John" (JN), "Thomas" (0MS) and "Tomas" (TMS), "Shaun" (XN) and
# "Sean" (SN). Folding H, 0 (th) and X (sh) makes those typos meet.
_KEY_FOLD = str.maketrans({"H": None, "0": "T", "X": "S"})


# Names repeat their words (an import of a million customers has a few
# thousand first names): each word's key is computed once per process.
@functools.lru_cache(maxsize=100_000)
def phonetic_key(word: str) -> str:
    if not word.isalpha():
        return word[:30]
    if word.startswith("chr"):
        word = "k" + word[2:]  # Christine, Christopher: a hard c
    return (jellyfish.metaphone(word).translate(_KEY_FOLD) or word)[:30]


def customer_tokens(display_name: str, *, folded: str | None = None) -> list[tuple[str, str]]:
    """The (word, phonetic key) pairs stored for a customer name, without repeats.
    `folded`: fold(display_name), where the caller has it already."""
    seen: dict[str, str] = {}
    for word in (fold(display_name) if folded is None else folded).split():
        seen.setdefault(word[:60], phonetic_key(word))
    return list(seen.items())


def search_words_add(pairs: Iterable[tuple[str, str]]) -> None:
    """Record (word, phonetic key) pairs in the dictionary of words (SearchWord);
    words already there are left as they are. In the words' order, so that two
    transactions adding the same new words never wait for each other in a cycle."""
    from .models import SearchWord

    SearchWord.objects.bulk_create(
        [SearchWord(word=word, phonetic=key) for word, key in sorted(dict(pairs).items())],
        ignore_conflicts=True,
        batch_size=5000,
    )


# Search words a statement of search_tokens_rewrite deletes (SQLite's parameters).
TOKENS_DELETED = 5000


def search_tokens_rewrite(
    customers: Sequence[Customer], *, words_known: Collection[str] = (), writer=None
) -> None:
    """The search tokens of these customers from the names they hold, stored
    or not yet: set-based, for a batch (an import's chunk, an undo's).

    Only the words that change are written: a rename keeps most of a name's
    words (the first name, a last name gaining a second part), and deleting
    and copying them again cost the bench's update 1.3 s of PostgreSQL's 4
    (100,000 rows, half of them renamed). The words' lookup and deletion go
    by index whatever the planner thinks of the table (by_index_only): never
    analysed after a bulk load, it was read whole for each batch.
    `words_known`: words the caller knows the dictionary (SearchWord) has."""
    from cim.bulk import RowWriter, by_index_only, pairs_condition, rows_with_ids

    from .models import CustomerSearchToken

    if not customers:
        return
    wanted: dict[tuple[int, str], str] = {}
    for customer in customers:
        for word, key in customer_tokens(customer.display_name, folded=customer.search_name):
            wanted[(customer.pk, word)] = key
    quote = connection.ops.quote_name
    table = quote(CustomerSearchToken._meta.db_table)
    ids = [customer.pk for customer in customers]
    with transaction.atomic(), connection.cursor() as cursor, by_index_only(cursor):
        stored = set(
            rows_with_ids(
                cursor, CustomerSearchToken, ("customer_id", "token"), key="customer_id", ids=ids
            )
        )
        gone = sorted(stored - wanted.keys())
        for start in range(0, len(gone), TOKENS_DELETED):
            condition, params = pairs_condition(
                quote("customer_id"), quote("token"), gone[start : start + TOKENS_DELETED]
            )
            cursor.execute(f"DELETE FROM {table} WHERE {condition}", params)
        added = [pair for pair in wanted if pair not in stored]
        # Words of stored names kept (a first name, when only the last one
        # changed) were added to the dictionary when stored.
        new_words = [(word, wanted[pk, word]) for pk, word in added if word not in words_known]
        if new_words:
            search_words_add(new_words)
        (writer or RowWriter()).insert(CustomerSearchToken, ("customer_id", "token"), added)


def search_index_refresh(customer_ids: Iterable[int]) -> None:
    """Rebuild the search tokens of these customers from their stored names."""
    from .models import Customer

    search_tokens_rewrite(
        list(
            Customer.objects.filter(pk__in=list(customer_ids))
            .order_by()
            .only("pk", "display_name", "search_name")
        )
    )


def sounds_like(word: str) -> Q:
    """Customer tokens (CustomerSearchToken) of the words that sound like `word`."""
    from .models import SearchWord

    return Q(token__in=SearchWord.objects.filter(phonetic=phonetic_key(word)).values("word"))


def one_typo_away(word: str) -> set[str]:
    """Every string one typo from `word`: a letter left out, added or changed, or
    two neighbours swapped.

    Why by hand: spelling-correction libraries (symspellpy and the like) hold
    their dictionary in each process's memory, but ours is a table that imports
    grow; these few hundred candidates (folded words hold only [0-9a-z]) are
    narrowed to the dictionary's real words by one lookup on its primary key.
    """
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {left + right[1:] for left, right in splits if right}
    edits |= {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
    edits |= {left + c + right[1:] for left, right in splits if right for c in _WORD_CHARACTERS}
    edits |= {left + c + right for left, right in splits for c in _WORD_CHARACTERS}
    edits.discard(word)
    return edits


def words_one_typo_away(typed: list[str]) -> dict[str, list[str]]:
    """{query word: the dictionary's words one typo from it}, for the words long
    enough to have a typo, in one lookup. Looked up before the search itself,
    so that the planner sees the few words found, not the hundreds tried: given
    those, it scanned every customer's words instead of looking them up
    (measured at 1M customers: 270 against 16 ms for a two-word name)."""
    from .models import SearchWord

    tried: dict[str, list[str]] = {}
    for word in typed:
        if _may_be_misspelt(word):
            for edit in one_typo_away(word):
                tried.setdefault(edit, []).append(word)
    found: dict[str, list[str]] = {}
    if tried:
        for edit in SearchWord.objects.filter(word__in=list(tried)).values_list("word", flat=True):
            for word in tried[edit]:
                found.setdefault(word, []).append(edit)
    return {word: sorted(edits) for word, edits in found.items()}


def is_one_typo_away(typed: str, word: str) -> bool:
    return _may_be_misspelt(typed) and OSA.distance(typed, word, score_cutoff=1) <= 1


def _may_be_misspelt(word: str) -> bool:
    """Whether a query word is matched to the words one typo from it."""
    return len(word) >= MIN_TYPO_WORD and word.isalpha()


def _prefix_upper_bound(prefix: str) -> str:
    # "smi" -> "smj": token >= "smi" AND token < "smj" is a prefix match that
    # any B-tree index serves, whatever the database collation.
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


MIN_PHONETIC_WORD = 3  # "Al" sounds like too many names to narrow anything
# "Jon" is one typo from too many names (Jan, Jo, Joe, Don...) to narrow anything.
MIN_TYPO_WORD = 4


def query_words(query: str) -> list[str]:
    """The distinct words of a query that name search matches, the first MAX_QUERY_WORDS."""
    return list(dict.fromkeys(words(query)))[:MAX_QUERY_WORDS]


def name_candidates(
    query: str, *, visible: QuerySet, limit: int, typo_words: dict[str, list[str]] | None = None
) -> list[int]:
    """Ids of visible customers whose name matches every query word, best first.

    One grouped query: per query word a customer scores 3 for an exact word, 2
    for a prefix, 1 for a sound-alike or a word one typo away (`typo_words`,
    from words_one_typo_away); customers missing any word drop out.
    """
    from .models import CustomerSearchToken, SearchWord

    wanted = query_words(query)
    if not wanted:
        return []
    table = CustomerSearchToken._meta.db_table
    dictionary = SearchWord._meta.db_table
    typo_words = typo_words or {}
    # One branch per way a word can match, each answerable from indexes alone
    # (prefix on search_token_idx; sound on search_word_phonetic_idx, then
    # search_token_idx for each word found; a typo by the words found
    # beforehand, through search_token_idx); the
    # visibility filter applies to the grouped candidates only, never to the
    # whole customer table. Only the table name and fixed fragments are
    # formatted in; every value is a bound parameter.
    branches, params = [], []
    for index, word in enumerate(wanted):
        upper = _prefix_upper_bound(word)
        branches.append(
            f"SELECT customer_id, {index} AS w, CASE WHEN token = %s THEN 3 ELSE 2 END AS s "
            f"FROM {table} WHERE token >= %s AND token < %s"
        )
        params += [word, word, upper]
        if len(word) >= MIN_PHONETIC_WORD and word.isalpha():
            branches.append(
                f"SELECT customer_id, {index}, 1 FROM {table} WHERE token IN "
                f"(SELECT word FROM {dictionary} WHERE phonetic = %s)"
            )
            params.append(phonetic_key(word))
        if typo_words.get(word):
            branches.append(
                f"SELECT customer_id, {index}, 1 FROM {table} WHERE token IN "
                f"({', '.join(['%s'] * len(typo_words[word]))})"
            )
            params += typo_words[word]
    visible_sql, visible_params = visible.order_by().values("pk").query.sql_with_params()
    sql = (
        f"SELECT g.customer_id FROM ("
        f"SELECT customer_id, SUM(s) AS score FROM ("
        f"SELECT customer_id, w, MAX(s) AS s FROM ({' UNION ALL '.join(branches)}) h "
        f"GROUP BY customer_id, w) pw GROUP BY customer_id HAVING COUNT(*) = %s) g "
        f"WHERE g.customer_id IN ({visible_sql}) "
        f"ORDER BY g.score DESC, g.customer_id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, len(wanted), *visible_params, limit])
        return [row[0] for row in cursor.fetchall()]


def rerank(query: str, customer_ids: list[int]) -> list[int]:
    """Order name candidates by how close the whole name is to what was typed.

    The grouped query only counts matching words, so many customers tie (every
    "John Smith" for "Jon Smyth"); rapidfuzz's token-sort ratio on the folded
    names puts the closest spelling first and an exact name at the top.
    """
    from rapidfuzz import fuzz

    from .models import Customer

    if not customer_ids:
        return customer_ids
    folded = fold(query)
    names = dict(Customer.objects.filter(pk__in=customer_ids).values_list("pk", "search_name"))
    position = {pk: index for index, pk in enumerate(customer_ids)}
    return sorted(
        customer_ids,
        key=lambda pk: (-fuzz.token_sort_ratio(folded, names.get(pk, "")), position[pk]),
    )


def highlight(display_name: str, query: str) -> list[tuple[str, bool]]:
    """Split a name into (text, matched) parts for <mark>-ing the words that matched."""
    typed = words(query)
    keys = {phonetic_key(w) for w in typed if len(w) >= MIN_PHONETIC_WORD}
    parts: list[tuple[str, bool]] = []
    for piece in re.split(r"(\s+)", display_name):
        folded = fold(piece)
        matched = bool(folded) and any(
            folded.startswith(w)
            or (folded.isalpha() and phonetic_key(folded) in keys)
            or is_one_typo_away(w, folded)
            for w in typed
        )
        parts.append((piece, matched))
    return parts
