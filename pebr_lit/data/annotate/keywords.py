"""Offline keywords of a description with ``yake`` (statistical, no model download): the no-teacher fallback.

Left out on purpose: asking a teacher for keywords (``annotate.tasks``) and the stage-1 keyword reward.
"""

from __future__ import annotations


def yake_keywords(text: str, top: int = 12, max_ngram: int = 2, language: str = "en") -> list[str]:
    """Up to ``top`` key phrases of ``text`` (best first, at most ``max_ngram`` words, case-insensitively unique).

    Needs ``yake`` (``pip install 'pebr-lit[annotate]'``)."""
    try:
        import yake
    except ImportError:
        raise ImportError(
            "keywords without a teacher need yake: pip install 'pebr-lit[annotate]' (or give --teacher)."
        ) from None
    extractor = yake.KeywordExtractor(lan=language, n=max_ngram, top=top * 2, dedupLim=0.7)
    seen: set[str] = set()
    words: list[str] = []
    for phrase, _score in extractor.extract_keywords(text):
        key = phrase.strip().lower()
        if key and key not in seen:
            seen.add(key)
            words.append(phrase.strip())
        if len(words) == top:
            break
    return words
