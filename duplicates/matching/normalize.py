"""Normalisation: what two records look like before they are compared.

Every path (scans, the create-time check, the import preview) turns a customer
into a MatchRecord here, so the blocking keys and the comparisons see the same
values whatever the input looked like.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from anyascii import anyascii

from customers.search import fold, phonetic_key

# A modest table of common given-name short forms -> the form we compare.
# English first (Bill/William, Bob/Robert, Liz/Elizabeth, Peggy/Margaret),
# then common ones of the other languages the CRM holds (German, French,
# Spanish, Italian, Portuguese, Dutch, Scandinavian, Polish). Only forms that
# are unambiguous enough: "Chris" (Christopher/Christine/Christian) or "Alex"
# and the ones shared by a man's and a woman's name (Pat, Sam, Jo, Terry, Val)
# are left out because mapping them would merge different people's names; the
# fuzzy comparison still scores them close to the full forms they start.
# A word table reads best packed, several pairs a line.
# fmt: off
NICKNAMES: dict[str, str] = {
    # English
    "bill": "william", "billy": "william", "will": "william", "willy": "william",
    "liam": "william", "bob": "robert", "bobby": "robert", "rob": "robert",
    "robbie": "robert", "bert": "robert", "dick": "richard", "rick": "richard",
    "ricky": "richard", "rich": "richard", "richie": "richard", "jim": "james",
    "jimmy": "james", "jamie": "james", "jack": "john", "johnny": "john",
    "jon": "john", "mike": "michael", "mick": "michael", "mickey": "michael",
    "tom": "thomas", "tommy": "thomas", "tony": "anthony", "ted": "edward",
    "ed": "edward", "eddie": "edward", "ned": "edward", "dave": "david",
    "davy": "david", "steve": "stephen", "steven": "stephen", "joe": "joseph",
    "joey": "joseph", "dan": "daniel", "danny": "daniel", "ben": "benjamin",
    "benny": "benjamin", "sammy": "samuel", "matt": "matthew",
    "andy": "andrew", "drew": "andrew", "pete": "peter", "charlie": "charles",
    "chuck": "charles", "harry": "henry", "hank": "henry", "nick": "nicholas",
    "greg": "gregory", "larry": "lawrence", "jerry": "gerald", "fred": "frederick",
    "freddie": "frederick", "ken": "kenneth", "kenny": "kenneth", "ron": "ronald",
    "ronnie": "ronald", "don": "donald", "donnie": "donald", "tim": "timothy",
    "phil": "philip", "paddy": "patrick", "ray": "raymond",
    "walt": "walter", "wally": "walter", "alf": "alfred", "gus": "augustus",
    "liz": "elizabeth", "lizzie": "elizabeth", "beth": "elizabeth",
    "betty": "elizabeth", "betsy": "elizabeth", "eliza": "elizabeth",
    "libby": "elizabeth", "elisabeth": "elizabeth", "peggy": "margaret",
    "maggie": "margaret", "meg": "margaret", "madge": "margaret", "molly": "mary",
    "polly": "mary", "kate": "katherine", "katie": "katherine", "kathy": "katherine",
    "cathy": "katherine", "catherine": "katherine", "kathryn": "katherine",
    "kitty": "katherine", "jenny": "jennifer", "jen": "jennifer", "sue": "susan",
    "susie": "susan", "suzy": "susan", "debbie": "deborah", "deb": "deborah",
    "patty": "patricia", "trish": "patricia", "tricia": "patricia",
    "sandy": "sandra", "cindy": "cynthia", "becky": "rebecca", "becca": "rebecca",
    "vicky": "victoria", "vicki": "victoria", "nancy": "ann", "annie": "ann",
    "anne": "ann", "abby": "abigail", "mandy": "amanda", "jess": "jessica",
    "jessie": "jessica", "tina": "christina", "dot": "dorothy", "dotty": "dorothy",
    "nell": "eleanor", "ellie": "eleanor", "peg": "margaret", "sally": "sarah",
    "sara": "sarah", "judy": "judith",
    "theresa": "teresa", "wendy": "gwendolyn",
    # German
    "hans": "johannes", "hannes": "johannes", "sepp": "joseph", "josef": "joseph",
    "jupp": "joseph", "fritz": "friedrich", "franz": "franziskus", "kurt": "konrad",
    "uli": "ulrich", "wolfi": "wolfgang", "gretchen": "margarete", "grete": "margarete",
    "liesel": "elizabeth", "lisa": "elizabeth", "steffi": "stefanie", "babsi": "barbara",
    # French
    "jeannot": "jean", "jojo": "georges", "manu": "emmanuel", "dede": "andre",
    "babette": "elizabeth", "margot": "marguerite", "mimi": "michelle",
    # Spanish and Portuguese
    "pepe": "jose", "paco": "francisco", "pancho": "francisco", "quique": "enrique",
    "nacho": "ignacio", "chema": "jose maria", "lola": "dolores", "lupe": "guadalupe",
    "conchita": "concepcion", "charo": "rosario", "rafa": "rafael", "chus": "jesus",
    "ze": "jose", "quim": "joaquim", "tonho": "antonio",
    # Italian
    "beppe": "giuseppe", "peppe": "giuseppe", "pino": "giuseppe", "gianni": "giovanni",
    "nino": "giovanni", "tonio": "antonio", "totò": "salvatore", "toto": "salvatore",
    "sandro": "alessandro", "bice": "beatrice", "pina": "giuseppina",
    # Dutch and Scandinavian
    "kees": "cornelis", "joop": "johannes", "jan": "johannes", "henk": "hendrik",
    "piet": "pieter", "wim": "willem", "klaas": "nicolaas", "bram": "abraham",
    "lasse": "lars", "nisse": "nils", "kalle": "karl", "janne": "johannes",
    # Polish
    "kasia": "katarzyna", "basia": "barbara", "gosia": "malgorzata", "tomek": "tomasz",
    "kuba": "jakub", "bartek": "bartlomiej", "wojtek": "wojciech", "jurek": "jerzy",
    "staszek": "stanislaw", "ola": "aleksandra", "ania": "anna", "asia": "joanna",
}
# fmt: on

# Street-type words and their abbreviations: "12 High St." == "12 High Street".
STREET_WORDS: dict[str, str] = {
    "st": "street",
    "str": "strasse",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "ln": "lane",
    "dr": "drive",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "cres": "crescent",
    "ter": "terrace",
    "tce": "terrace",
    "hwy": "highway",
    "pk": "park",
    "gdns": "gardens",
    "cl": "close",
    "mt": "mount",
    "straße": "strasse",
    "strasse": "strasse",
    "pkwy": "parkway",
    "apt": "apartment",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
}
_GLUED_STREET = re.compile(r"(straat|strasse|str|gasse|weg|vej|gatan|gata|veien)\b")
_DIGITS = re.compile(r"\d+")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


_ASCII_NOT_WORD = re.compile(r"[^0-9a-z]+")

# The per-value functions below are pure, and names, streets, towns and
# postcodes repeat a lot (a full scan normalises millions of values drawn from
# a few hundred thousand distinct ones): each keeps a bounded cache, so a
# repeated value costs a dictionary look-up.
_CACHE = 1 << 17


@lru_cache(maxsize=_CACHE)
def name_fold(value: str) -> str:
    """Any script, case, accent and punctuation folded: "Ørsted-Ñúñez" -> "orsted nunez"."""
    return _name_fold(value)


def _name_fold(value: str) -> str:
    if not value:
        return ""
    if value.isascii():
        # What customers.search.fold does to ASCII text, without its Unicode
        # steps: most names are plain ASCII, and scans fold millions of them.
        return " ".join(_ASCII_NOT_WORD.sub(" ", value.lower()).split())
    return fold(anyascii(value))


@lru_cache(maxsize=_CACHE)
def given_name_canonical(folded: str) -> str:
    """The compared form of a folded given name: its first word through the nickname table."""
    if not folded:
        return ""
    first, _, rest = folded.partition(" ")
    canonical = NICKNAMES.get(first, first)
    return f"{canonical} {rest}".strip() if rest else canonical


@lru_cache(maxsize=_CACHE)
def name_phonetic(folded: str) -> str:
    """One phonetic key for a (possibly multi-word) folded name."""
    return phonetic_key(folded.replace(" ", "")) if folded else ""


def email_normal(value: str) -> str:
    """Lower-cased; for Gmail the dots and a "+tag" in the local part are ignored,
    as Gmail delivers those to one mailbox."""
    value = (value or "").strip().lower()
    local, at, domain = value.rpartition("@")
    if not at:
        return value
    if domain in _GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def phone_normal(value: str) -> str:
    """Stored phones are E.164 already; a value that is not keeps only its digits."""
    value = (value or "").strip()
    if value[:1] == "+" and value[1:].isdigit():
        return value  # E.164 already: the common case, without a loop over it
    return "+" + "".join(ch for ch in value if ch.isdigit()) if value else ""


@lru_cache(maxsize=_CACHE)
def postcode_normal(value: str) -> str:
    return _NOT_ALNUM.sub("", (value or "").upper())


def street_normal(value: str) -> tuple[str, str]:
    """(house number, street words with the street type spelled out): "12a High St." ->
    ("12", "high street"); "Hauptstr. 5" -> ("5", "haupt strasse")."""
    # Not through name_fold's cache: with the house number nearly every street
    # value is distinct. The street without its numbers repeats: cached.
    text = _name_fold(value)
    number = _DIGITS.search(text)
    words = _street_words(" ".join(w for w in text.split() if not w.isdigit()))
    return (number.group() if number else ""), words


@lru_cache(maxsize=_CACHE)
def _street_words(text: str) -> str:
    """The folded street's words (numbers left out) with the street type spelled out."""
    text = _GLUED_STREET.sub(r" \1", text)
    return " ".join(STREET_WORDS.get(w, w) for w in text.split() if not w.isdigit())


def national_id_normal(value: str) -> str:
    return _NOT_ALNUM.sub("", (value or "").upper())


def dob_normal(value) -> str:
    """ISO YYYY-MM-DD, or "" when missing or unreadable."""
    if not value:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()[:10]
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return ""


# json.dumps(value, separators=(",", ":")) without building an encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(slots=True)
class MatchRecord:
    """A customer as the matcher sees it (normalised), plus what the explanation shows."""

    id: int
    kind: str  # "person" or "organization"
    first: str  # folded given name(s), nickname-resolved first word
    last: str  # folded surname, or the organisation name
    first_shown: str
    last_shown: str
    dob: str  # ISO or ""
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    national_id: str
    postcode: str
    house: str
    street: str
    city: str
    # Phonetic keys of the first given name and of the surname, and the
    # blocking keys (duplicates.matching.blocking), derived once when built.
    first_key: str = ""
    last_key: str = ""
    keys: tuple[str, ...] = ()

    def dumps(self) -> str:
        return _ENCODE(
            [
                self.kind,
                self.first,
                self.last,
                self.first_shown,
                self.last_shown,
                self.dob,
                self.emails,
                self.phones,
                self.national_id,
                self.postcode,
                self.house,
                self.street,
                self.city,
                self.first_key,
                self.last_key,
                self.keys,
            ]
        )

    @classmethod
    def loads(cls, customer_id: int, payload: str) -> MatchRecord:
        (
            kind,
            first,
            last,
            first_shown,
            last_shown,
            dob,
            emails,
            phones,
            nid,
            postcode,
            house,
            street,
            city,
            first_key,
            last_key,
            keys,
        ) = json.loads(payload)
        return cls(
            customer_id,
            kind,
            first,
            last,
            first_shown,
            last_shown,
            dob,
            tuple(emails),
            tuple(phones),
            nid,
            postcode,
            house,
            street,
            city,
            first_key,
            last_key,
            tuple(keys),
        )


def record_build(
    *,
    customer_id: int,
    kind: str = "person",
    first_name: str = "",
    last_name: str = "",
    organization_name: str = "",
    date_of_birth=None,
    national_id: str = "",
    tax_id: str = "",
    emails=(),
    phones=(),
    street: str = "",
    city: str = "",
    postcode: str = "",
) -> MatchRecord:
    """A MatchRecord from raw customer values (stored or typed in)."""
    organization = kind == "organization"
    if organization:
        first, last = "", name_fold(organization_name or last_name)
        first_shown, last_shown = "", organization_name or last_name
        identifier = national_id_normal(tax_id or national_id)
    else:
        first = given_name_canonical(name_fold(first_name))
        last = name_fold(last_name)
        first_shown, last_shown = first_name or "", last_name or ""
        identifier = national_id_normal(national_id)
    house, street_words = street_normal(street)
    record = MatchRecord(
        id=customer_id,
        kind="organization" if organization else "person",
        first=first,
        last=last,
        first_shown=first_shown,
        last_shown=last_shown,
        dob="" if organization else dob_normal(date_of_birth),
        emails=tuple(sorted({email_normal(e) for e in emails if e})),
        phones=tuple(sorted({phone_normal(p) for p in phones if p})),
        national_id=identifier,
        postcode=postcode_normal(postcode),
        house=house,
        street=street_words,
        city=name_fold(city),
        first_key=name_phonetic(first.partition(" ")[0]),
        last_key=name_phonetic(last),
    )
    record.keys = tuple(_record_keys()(record))
    return record


@lru_cache(maxsize=1)
def _record_keys():
    from .blocking import record_keys  # blocking builds on this module

    return record_keys


def record_from_data(data: dict, *, customer_id: int = 0) -> MatchRecord:
    """A MatchRecord from a dict with the import columns (create form, import preview)."""
    return record_build(
        customer_id=customer_id,
        kind=(data.get("kind") or "person").strip().lower() or "person",
        first_name=data.get("first_name") or "",
        last_name=data.get("last_name") or "",
        organization_name=data.get("organization_name") or "",
        date_of_birth=data.get("date_of_birth"),
        national_id=data.get("national_id") or "",
        tax_id=data.get("tax_id") or "",
        emails=[data["email"]] if data.get("email") else [],
        phones=[data["phone"]] if data.get("phone") else [],
        street=data.get("street") or "",
        city=data.get("city") or "",
        postcode=data.get("postcode") or "",
    )
