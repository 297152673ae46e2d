"""Automatic rewrites of a Dutch statement that keep its meaning, for metamorphic safety tests.

Each rewrite returns ``None`` where it does not apply (no "ik" to move, no verb it knows). Test data,
not product text: the word tables below only serve to rewrite the dev set.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Present -> past tense of the verbs patients use most.
PAST = {
    "heb": "had",
    "heeft": "had",
    "hebben": "hadden",
    "ben": "was",
    "is": "was",
    "zijn": "waren",
    "wil": "wilde",
    "wilt": "wilde",
    "kan": "kon",
    "kun": "kon",
    "zie": "zag",
    "ziet": "zag",
    "voel": "voelde",
    "voelt": "voelde",
    "krijg": "kreeg",
    "krijgt": "kreeg",
    "doe": "deed",
    "doet": "deed",
    "neem": "nam",
    "neemt": "nam",
    "ga": "ging",
    "gaat": "ging",
    "word": "werd",
    "wordt": "werd",
    "denk": "dacht",
    "denkt": "dacht",
    "snij": "sneed",
    "snijdt": "sneed",
    "slaat": "sloeg",
    "sla": "sloeg",
    "reageert": "reageerde",
    "zit": "zat",
    "zitten": "zaten",
    "hangt": "hing",
    "praat": "praatte",
    "drinkt": "dronk",
    "drink": "dronk",
    "ademt": "ademde",
    "zegt": "zei",
    "bloedt": "bloedde",
    "hoest": "hoestte",
    "stik": "stikte",
    "slik": "slikte",
    "slikt": "slikte",
    "duwt": "duwde",
    "schopt": "schopte",
    "bedreigt": "bedreigde",
    "sluit": "sloot",
    "spuugt": "spuugde",
    "braakt": "braakte",
    "zweet": "zweette",
    "tril": "trilde",
    "trilt": "trilde",
    "kras": "kraste",
    "krast": "kraste",
    "brand": "brandde",
    "mag": "mocht",
    "moet": "moest",
    "zal": "zou",
    "komt": "kwam",
    "kom": "kwam",
    "valt": "viel",
    "val": "viel",
    "ligt": "lag",
    "lig": "lag",
    "staat": "stond",
    "sta": "stond",
    "houdt": "hield",
    "hoopt": "hoopte",
    "hoop": "hoopte",
    "geeft": "gaf",
    "geef": "gaf",
    "zwelt": "zwol",
}
# First person -> third person (after "ik" moves to "hij").
THIRD = {
    "heb": "heeft",
    "ben": "is",
    "wil": "wil",
    "kan": "kan",
    "zal": "zal",
    "mag": "mag",
    "moet": "moet",
    "snij": "snijdt",
    "word": "wordt",
    "had": "had",
    "was": "was",
    "wilde": "wilde",
    "kon": "kon",
    "zag": "zag",
    "deed": "deed",
    "nam": "nam",
    "ging": "ging",
    "werd": "werd",
    "dacht": "dacht",
    "sneed": "sneed",
    "kreeg": "kreeg",
    "voelde": "voelde",
    "ga": "gaat",
    "sta": "staat",
    "doe": "doet",
    "zie": "ziet",
    "sla": "slaat",
    "hou": "houdt",
    "kom": "komt",
    "denk": "denkt",
    "eet": "eet",
    "lig": "ligt",
    "zit": "zit",
    "wou": "wou",
    "geloof": "gelooft",
    "verdien": "verdient",
    "trek": "trekt",
    "krab": "krabt",
    "voel": "voelt",
    "krijg": "krijgt",
    "neem": "neemt",
    "slik": "slikt",
    "val": "valt",
    "stik": "stikt",
    "loop": "loopt",
    "weet": "weet",
    "hoest": "hoest",
    "tril": "trilt",
    "kras": "krast",
    "brand": "brandt",
    "spuug": "spuugt",
    "zweet": "zweet",
    "bloed": "bloedt",
    "vergeet": "vergeet",
    "probeer": "probeert",
    "stop": "stopt",
    "durf": "durft",
    "lukt": "lukt",
    "viel": "viel",
    "lag": "lag",
    "zat": "zat",
    "stond": "stond",
    "kraste": "kraste",
    "gaf": "gaf",
    "hield": "hield",
}
NOT_A_VERB = {"niet", "ook", "wel", "al", "heel", "echt", "zo", "nu", "soms", "nog", "dan", "denk", "weet"}
OBJECT = {
    "me": "hem",
    "mij": "hem",
    "mezelf": "zichzelf",
    "mijzelf": "zichzelf",
    "mijn": "zijn",
    "m'n": "zijn",
}
CHAT = {
    "ik": "k",
    "niet": "nie",
    "mijn": "mn",
    "het": "t",
    "even": "ff",
    "dat": "da",
    "wat": "wa",
    "meer": "mr",
}
FILLER = "Ik weet niet goed hoe ik het moet zeggen, maar "
TIME_WORD = "Vannacht"

_WORD = re.compile(r"\d+(?:[.,]\d+)?x?|\w+(?:[-']\w+)*|[^\w\s]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _join(words: list[str]) -> str:
    out = ""
    for w in words:
        out += w if (not out or re.fullmatch(r"[.,!?;:)]+", w)) else " " + w
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def time_word_first(text: str) -> str | None:
    """ "Ik heb ..." -> "Vannacht heb ik ..." (Dutch inverts subject and verb)."""
    w = _words(text)
    if len(w) >= 3 and w[0].lower() in ("ik", "k") and w[1].isalpha():
        return _join([TIME_WORD, w[1], "ik", *w[2:]])
    if len(w) >= 4 and w[0].lower() in ("mijn", "mn") and w[2].isalpha():
        return _join([TIME_WORD, w[2], "mijn", w[1], *w[3:]])
    return None


def i_think_that(text: str) -> str | None:
    """ "Ik heb pijn op de borst" -> "Ik denk dat ik pijn op de borst heb" (the verb goes last)."""
    w = [x for x in _words(text) if x not in ".!?"]
    if len(w) > 12 or any(x in ",;:" for x in w):
        return None  # one short clause only: in a longer text the verb would land in the wrong clause
    if len(w) >= 3 and w[0].lower() in ("ik", "k") and w[1].isalpha() and w[1].lower() not in NOT_A_VERB:
        return _join(["Ik", "denk", "dat", "ik", *w[2:], w[1]])
    return None


def past_tense(text: str) -> str | None:
    w = _words(text)
    out = [PAST.get(x.lower(), x) for x in w]
    return _join(out) if out != w else None


def third_person(text: str) -> str | None:
    """The patient speaks about someone else: "ik heb ..." -> "mijn man heeft ..."."""
    w = _words(text)
    lows = [x.lower() for x in w]
    if not any(x in ("ik", "k") for x in lows) or any(x in ("me", "mij", "hij", "zij", "hem") for x in lows):
        return None  # no "ik", or "me" / "hij" already there: the rewrite would change who does what
    out: list[str] = []
    for i, x in enumerate(w):
        low = lows[i]
        if low in ("ik", "k"):
            out.append("mijn man" if i == 0 else "hij")
        elif i > 0 and lows[i - 1] in ("ik", "k") and low in THIRD:
            out.append(THIRD[low])  # "ik heb" -> "hij heeft"; a verb it does not know stays as it is
        elif i > 0 and low in THIRD and i + 1 < len(w) and lows[i + 1] in ("ik", "k"):
            out.append(THIRD[low])  # "heb ik" -> "heeft hij"
        else:
            out.append(OBJECT.get(low, x))
    return _join(out)


def chat_spelling(text: str) -> str | None:
    out = [CHAT.get(x.lower(), x.lower()) for x in _words(text) if x not in ".,!?;:"]
    return " ".join(out)


def one_typo(text: str) -> str | None:
    """One letter dropped from the middle of the longest word (at least six letters)."""
    w = _words(text)
    longest = max(range(len(w)), key=lambda i: len(w[i]), default=None)
    if longest is None or len(w[longest]) < 6 or not w[longest].isalpha():
        return None
    word = w[longest]
    mid = len(word) // 2
    w[longest] = word[:mid] + word[mid + 1 :]
    return _join(w)


def filler_clause(text: str) -> str | None:
    return FILLER + _lower_first(text)


REWRITES: dict[str, Callable[[str], str | None]] = {
    "time word first": time_word_first,
    "ik denk dat": i_think_that,
    "past tense": past_tense,
    "third person": third_person,
    "chat spelling": chat_spelling,
    "one typo": one_typo,
    "filler clause": filler_clause,
}
