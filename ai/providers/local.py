"""The provider without network: answers built from what Imago already knows, deterministically."""

import re
from collections import Counter

from ai.providers.base import (
    Completion,
    Provider,
    ProviderError,
    SummaryAnswer,
    TaskDraft,
    TextAnswer,
    VisionAnswer,
)

SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"'«(]?[A-Z0-9À-Ý])")
LEAD_SENTENCES = 3
FUNCTION_WORDS = (
    "this that with from have your will been were they their there what when which about would "
    "could should into than then them these those also only some more most very just over such "
    "dans pour avec sans sont être avoir cette votre vous nous leur leurs mais plus tout tous "
    "comme elle elles"
)
KEYWORD_STOPWORDS = frozenset(FUNCTION_WORDS.split())
URGENT_WORDS = ("urgent", "asap", "immediately", "outage", "down", "security", "data loss")
HIGH_WORDS = (
    *("crash", "crashes", "broke", "broken", "error", "errors", "fail", "fails", "failing"),
    *("failure", "cannot", "bug", "blocker", "customer", "customers", "regression"),
)
LOW_WORDS = ("nice to have", "someday", "later", "minor", "cosmetic", "typo")


def sentences(text: str) -> list[str]:
    """The sentences of each line (a heading or list item is a line of its own)."""
    found = []
    for line in text.splitlines():
        found.extend(s.strip() for s in SENTENCE_END.split(" ".join(line.split())) if s.strip())
    return found


def ocr_keywords(text: str, *, limit: int = 8) -> list[str]:
    """The most frequent words of four letters or more, skipping common function words."""
    words = [w.lower() for w in re.findall(r"[^\W\d_]{4,}", text)]
    counts = Counter(w for w in words if w not in KEYWORD_STOPWORDS)
    return [word for word, _ in counts.most_common(limit)]


class LocalProvider(Provider):
    name = "local"
    model = None
    reads_images = False

    def describe_image(
        self, *, data: bytes, mime_type: str, language: str, hints: list[str]
    ) -> Completion[VisionAnswer]:
        # The hints are the detection step's classes and the OCR keywords: they are the tags.
        tags = list(dict.fromkeys(h.strip().lower() for h in hints if h.strip()))
        return Completion(VisionAnswer(description=None, tags=tags[:30], confidence=None))

    def read_text(self, *, data: bytes, mime_type: str) -> Completion[TextAnswer]:
        raise ProviderError("The local provider cannot read images; Tesseract's text is kept.")

    def summarize(
        self, *, text: str, title: str | None, language: str
    ) -> Completion[SummaryAnswer]:
        # The page's own heading, repeated as the text's first line, is not a lead sentence.
        lead = [s for s in sentences(text) if s != title][:LEAD_SENTENCES]
        if not lead:
            raise ProviderError("The page has no text to summarise.")
        return Completion(SummaryAnswer(summary=" ".join(lead)))

    def draft_task(self, *, description: str, context: str, language: str) -> Completion[TaskDraft]:
        parts = _task_parts(description)
        first = parts[0].rstrip(".!?")
        title = first if len(first) <= 80 else first[:77].rsplit(" ", 1)[0] + "…"
        steps = parts[1:] or [first]
        criteria = [f"Done: {step.rstrip('.')}." for step in steps]
        if context.strip():
            criteria.append(f"Consistent with the context: {context.strip()[:200]}")
        return Completion(
            TaskDraft(
                title=title[:1].upper() + title[1:],
                summary=" ".join(sentences(description)[:2]) or first,
                steps=steps[:20],
                acceptance_criteria=criteria[:20],
                priority=_priority(f"{description} {context}".lower()),
                estimate=_estimate(len(steps), len(description)),
            )
        )


def _task_parts(description: str) -> list[str]:
    """Lines or list items when the description has them, else its sentences."""
    items = [
        re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip()
        for line in description.splitlines()
        if line.strip()
    ]
    if len(items) > 1:
        return items
    found = sentences(description)
    if not found:
        raise ProviderError("The description is empty.")
    return found


def _priority(text: str) -> str:
    for priority, words in (("urgent", URGENT_WORDS), ("high", HIGH_WORDS), ("low", LOW_WORDS)):
        if any(re.search(rf"\b{re.escape(word)}\b", text) for word in words):
            return priority
    return "medium"


def _estimate(steps: int, length: int) -> str:
    if steps <= 1 and length < 120:
        return "xs"
    if steps <= 3:
        return "s"
    if steps <= 6:
        return "m"
    return "l" if steps <= 10 else "xl"
