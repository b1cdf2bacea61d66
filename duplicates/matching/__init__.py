"""The matching engine: one way to tell whether two customers are the same,
used by the background scans, the create-time check and the import preview.

Pipeline
--------
1. Normalisation (normalize.py): names folded (any script, case, accents,
   punctuation), the first given name through a small documented nickname
   table (Bill -> William, Peggy -> Margaret, Pepe -> José, Kasia ->
   Katarzyna, ...), phonetic keys (metaphone, as customer search uses),
   e-mails lower-cased (Gmail dots and +tags ignored), phones in E.164,
   addresses as house number + street words with the street type spelled out
   (St -> Street, Rd -> Road, Str. -> Strasse) and postcodes without spaces.
2. Blocking (blocking.py): a few keys per record (name sounds + birth year,
   surname sound + birth date, first-name sound + birth date, e-mail, phone,
   national id, postcode + house number + street initials); only records
   sharing a key are compared,
   and blocks above MAX_BLOCK are compared by sorted neighbourhood, never all
   pairs. Keys live in MatchKey, the records as compared in MatchProfile.
3. Comparison (compare.py): one level per comparison (rapidfuzz Jaro-Winkler
   and Damerau-Levenshtein, jellyfish metaphone): first name x birth date
   (joint: agree / close / differ / missing combined), surname, e-mail,
   phone, address (the same home: postcode or town, street and number),
   national id. An e-mail or phone shared by more customers than a block
   holds (a family or office mailbox, a switchboard: the large blocks' keys,
   kept with the model) counts as missing, not as agreement.
4. Model (model.py): Fellegi-Sunter weights from a latent-class model
   learned by EM on the comparison patterns of a sample of the *blocked*
   pairs of the data (not random pairs), so that the non-duplicates it learns
   from are the ones blocking actually brings together: households sharing a
   surname, an address, a landline or a family e-mail, and neighbours. Those
   agree on several fields at once, which breaks the two-class model's
   independence assumption, so the non-duplicates are three latent classes
   (related, unrelated, namesakes: strangers met by a shared surname) next
   to the duplicates; EM learns the four classes'
   shares and level probabilities, with one structural constraint naming the
   duplicate class (a duplicate never differs in both first name and birth
   date). The joint first name x birth date comparison is what separates
   household members, and the learned weights say so. Each comparison counts
   log2(m/u) (its weight, for the explanation); the posterior probability of
   the duplicate class is the score.
5. Term frequencies (model.py, engine.name_frequencies): agreeing on a common
   name is weaker evidence than agreeing on a rare one. A full scan counts,
   once, in its learning phase (engine.learn_model), how many people bear
   each normalised first name (first word, after the nickname table) and
   each surname in its profiles (MatchProfile; one grouped query over a
   random row sample of at most engine.FREQUENCY_SAMPLE profiles), and keeps
   the counts of the commonest model.FREQUENCY_VALUES values of each, the
   average count of the others, sum(f^2) and how much likelier two people
   with one first name are to share a surname than any two (names go
   together by language and origin) in the model's JSON ("frequencies",
   about 140 kB). When a pair agrees on a first name v or surname w, the
   strangers' probability of that agreement becomes the chance of it for
   these values: u * f(v) / sum(f^2) for the first name (EM's average u,
   redistributed by value as linkage tools such as Splink do), f(w) (times
   that dependence when the first names agree too) for the surname
   (strangers share one only by chance).
   So two John Smiths born on one day who share nothing else may be
   strangers (and more so in a bigger database, where such coincidences are
   commoner), two Xavier Quennells hardly; the explanation shows how common
   the agreed name is and how much that changed its weight. The duplicates'
   and households' probabilities are not adjusted (they share a name
   whatever it is). Nothing about the values is hard-coded: the frequencies
   are the data's own, recounted by every full scan.

   A full scan stores its model (JSON, with the frequencies) on the
   DuplicateScan; incremental scans, the create-time check and the import
   preview use the last one. Before any full scan, or when a database is too
   small for EM (fewer than scanning.MIN_TRAIN_PAIRS blocked pairs), a
   documented default model (engine.DEFAULT_MODEL) scores.

Default threshold
-----------------
A pair is proposed when its posterior probability is at least
DEFAULT_THRESHOLD = 0.9: the model then thinks it nine times likelier a
duplicate than not. Pairs with strong evidence score near 1; the pairs near
the threshold are the doubtful ones (a shared e-mail and surname with a close
but different first name and a missing birth date), and at 0.9 the expected
share of wrong proposals among all proposed pairs stays around one or two in
a hundred, while a lower threshold adds mostly household members and a higher
one loses the nickname-plus-typo duplicates. Stewards review every proposal,
so a little below certainty is the right trade. The threshold is stored with
each scan's model, so a later change does not rewrite history.

Explanation
-----------
Each scored pair carries a list of {comparison, level (agreed / fuzzy /
disagreed / missing), label, weight, a, b}; national ids are shown masked to
their last three characters.
"""

from __future__ import annotations

from .engine import DEFAULT_THRESHOLD, current_model, explanation, pair_score
from .lookup import LikelyMatch, likely_duplicates_in_rows, likely_matches

__all__ = [
    "DEFAULT_THRESHOLD",
    "LikelyMatch",
    "current_model",
    "explanation",
    "likely_duplicates_in_rows",
    "likely_matches",
    "pair_score",
]
