"""Sentence ranking for the offline model: BM25 over the sentences of the sources.

Deterministic and dependency-free: words are lower-cased, stop words dropped and
plural/verb endings trimmed, so "installing packages" matches "install a package".
"""

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from src.domain.service.prompt_builder import ContextSource

BM25_K1 = 1.2
BM25_B = 0.75
MIN_SENTENCE_WORDS = 3
RELATIVE_CUTOFF = 0.5
"""A sentence is kept when it scores at least this share of the best one."""

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+>•#]+|\d+[.)])\s+")
_STOP_WORDS_TEXT = """
a about above after again all also am an and any are as at be because been before
being between both but by can could did do does doing down during each few for from
further had has have having he her here hers him his how i if in into is it its
itself just me more most my no nor not now of off on once only or other our ours out
over own please same she should so some such tell than that the their theirs them
then there these they this those through to too under until up us very was we were
what when where which while who whom why will with would you your yours
"""
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


@dataclass(frozen=True)
class RankedSentence:
    """A sentence of a source with its relevance to the question.

    Attributes:
        text: The sentence, whitespace collapsed.
        source: The citation number of its source.
        position: Its index among all sentences (ties keep document order).
        score: The BM25 score (higher is more relevant).
    """

    text: str
    source: int
    position: int
    score: float


def terms(text: str) -> list[str]:
    """The content words of a text, normalised for matching."""
    return [
        _stem(word)
        for word in _WORD.findall(text.lower())
        if word not in _STOP_WORDS and (len(word) > 1 or word.isdigit())
    ]


def split_sentences(text: str) -> list[str]:
    """Sentences of a text: one per line at least, then split on end marks."""
    sentences: list[str] = []
    for line in text.splitlines():
        cleaned = _LIST_MARKER.sub("", line).strip()
        sentences.extend(s for s in _SENTENCE_END.split(cleaned) if s)
    return sentences


def rank_sentences(
    question: str, sources: Sequence[ContextSource], *, limit: int
) -> list[RankedSentence]:
    """The sentences most relevant to the question, best first.

    Args:
        question: The user's question.
        sources: The numbered sources of the prompt.
        limit: At most this many sentences.

    Returns:
        Sentences sharing at least one content word with the question and
        scoring at least half the best one; empty when nothing matches.
    """
    query = set(terms(question))
    candidates = _candidates(sources)
    if not query or not candidates:
        return []
    scored = _score(query, candidates)
    best = max((s.score for s in scored), default=0.0)
    if best <= 0:
        return []
    kept = [s for s in scored if s.score >= best * RELATIVE_CUTOFF]
    kept.sort(key=lambda s: (-s.score, s.position))
    return _unique(kept)[:limit]


def _stem(word: str) -> str:
    if word.endswith("ss"):
        return word
    for suffix in ("ing", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _candidates(sources: Sequence[ContextSource]) -> list[tuple[int, str]]:
    return [
        (source.number, " ".join(sentence.split()))
        for source in sources
        for sentence in split_sentences(source.content)
        if len(sentence.split()) >= MIN_SENTENCE_WORDS
    ]


def _score(query: set[str], candidates: list[tuple[int, str]]) -> list[RankedSentence]:
    bags = [Counter(terms(text)) for _, text in candidates]
    count = len(bags)
    average = sum(sum(b.values()) for b in bags) / count or 1.0
    frequency = Counter(term for bag in bags for term in query & bag.keys())
    idf = {t: math.log(1 + (count - n + 0.5) / (n + 0.5)) for t, n in frequency.items()}
    ranked = []
    for position, ((source, text), bag) in enumerate(
        zip(candidates, bags, strict=True)
    ):
        norm = BM25_K1 * (1 - BM25_B + BM25_B * sum(bag.values()) / average)
        score = sum(
            idf[t] * bag[t] * (BM25_K1 + 1) / (bag[t] + norm)
            for t in query & bag.keys()
        )
        ranked.append(RankedSentence(text, source, position, score))
    return ranked


def _unique(sentences: list[RankedSentence]) -> list[RankedSentence]:
    seen: set[str] = set()
    unique = []
    for sentence in sentences:
        key = sentence.text.lower()
        if key not in seen:
            seen.add(key)
            unique.append(sentence)
    return unique
