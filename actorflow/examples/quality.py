"""The loop example: `quality_improver` edits a text one measured rule per iteration.

Each run measures the text (sentence length, filler words, wordy phrases, doubled words,
capitalised sentence starts, spacing), tries every edit rule on it, keeps the edit that raises
the quality score most, and sets `loop_complete` once the score reaches `target_quality`
(or when no rule can improve the text any further).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from actorflow.events import Event, State
from actorflow.examples._sales import DATA_DIR

__all__ = ["quality_improver", "measure", "quality_score", "RULES"]

DRAFT = DATA_DIR / "draft.txt"
DEFAULT_TARGET = 0.9
MAX_SENTENCE_WORDS = 25

FILLERS = ("basically", "actually", "really", "very", "just", "quite", "literally", "totally",
           "kind of", "sort of")
WORDY = {
    "due to the fact that": "because",
    "at this point in time": "now",
    "in the event that": "if",
    "for the purpose of": "for",
    "in order to": "to",
    "has the ability to": "can",
    "have the ability to": "can",
    "is able to": "can",
    "a large number of": "many",
    "make a decision to": "decide to",
    "with regard to": "about",
    "it is believed that": "we believe that",
    "it was found that": "we found that",
    "it was decided that": "we decided that",
    "it should be noted that": "note that",
}
WEIGHTS = {"sentence_length": 0.3, "filler": 0.2, "wordy": 0.15, "capitalisation": 0.15,
           "doubled": 0.1, "spacing": 0.1}
"""Score weights (sum 1). Density-based components reach 0 at these counts per 100 words:"""
ZERO_AT_PER_100_WORDS = {"filler": 8.0, "wordy": 4.0, "doubled": 3.0, "spacing": 5.0}

_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
_SENTENCE_START = re.compile(r"(^\s*|[.!?]\s+)([a-z])")
_DOUBLED = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)
_FILLER = re.compile(r"\b(" + "|".join(f.replace(" ", r"\s+") for f in FILLERS) + r")\b\s+(?=\w)", re.IGNORECASE)
_WORDY = re.compile(r"\b(" + "|".join(p.replace(" ", r"\s+") for p in sorted(WORDY, key=len, reverse=True)) + r")\b",
                    re.IGNORECASE)
_SPACING = (
    (re.compile(r"(?<=\S) {2,}(?=\S)"), " "),      # runs of spaces
    (re.compile(r"\s+(?=[,.;:!?])"), ""),           # space before punctuation
    (re.compile(r"([!?.])\1+"), r"\1"),              # repeated end punctuation
    (re.compile(r"([,;:])(?=[A-Za-z])"), r"\1 "),    # no space after a comma
)
# Where an overlong sentence may be split, and the word that opens the new sentence.
_SPLITS = ((re.compile(r",\s+and\s+"), ""), (re.compile(r",\s+but\s+"), "But"), (re.compile(r";\s+"), ""),
           (re.compile(r",\s+which\s+"), "This"), (re.compile(r",\s+so\s+"), "So"))


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_BREAK.split(text.strip()) if s]


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _match_case(original: str, replacement: str) -> str:
    return _capitalise(replacement) if original[:1].isupper() else replacement


def measure(text: str) -> dict[str, float]:
    """Each quality component in [0, 1] (1 is best), from counts in the text."""
    sents = sentences(text)
    n_sents, n_words = max(1, len(sents)), max(1, _words(text))
    per_100 = n_words / 100.0
    counts = {
        "filler": len(_FILLER.findall(text)),
        "wordy": len(_WORDY.findall(text)),
        "doubled": len(_DOUBLED.findall(text)),
        "spacing": sum(len(p.findall(text)) for p, _ in _SPACING),
    }
    components = {
        # words that sit within the first MAX_SENTENCE_WORDS of their sentence
        "sentence_length": sum(min(_words(s), MAX_SENTENCE_WORDS) for s in sents) / n_words,
        "capitalisation": 1 - sum(1 for s in sents if s[:1].islower()) / n_sents,
    }
    for name, count in counts.items():
        components[name] = max(0.0, 1 - count / per_100 / ZERO_AT_PER_100_WORDS[name])
    return {name: round(components[name], 4) for name in WEIGHTS}


def quality_score(text: str) -> float:
    """The weighted mean of `measure(text)`, in [0, 1]."""
    return round(sum(WEIGHTS[name] * value for name, value in measure(text).items()), 4)


# --- edit rules: text -> (new text, number of changes, description) -------------------------

def fix_doubled_words(text: str) -> tuple[str, int, str]:
    found = [m.group(0) for m in _DOUBLED.finditer(text)]
    new, n = _DOUBLED.subn(r"\1", text)
    return new, n, f"removed {n} doubled word(s): {', '.join(repr(f) for f in found)}"


def capitalise_sentences(text: str) -> tuple[str, int, str]:
    new, n = _SENTENCE_START.subn(lambda m: m.group(1) + m.group(2).upper(), text)
    return new, n, f"capitalised {n} sentence start(s)"


def remove_fillers(text: str) -> tuple[str, int, str]:
    removed: list[str] = []

    def drop(m: re.Match[str]) -> str:
        removed.append(m.group(1).lower())
        # a filler that opened a sentence hands its capital letter on
        return "\0" if m.group(1)[:1].isupper() else ""

    new = text
    while True:  # adjacent fillers ("really very") need more than one pass
        new, n = _FILLER.subn(drop, new)
        if not n:
            break
    new = re.sub(r"\0(\w)", lambda m: m.group(1).upper(), new)
    return new, len(removed), f"removed {len(removed)} filler word(s): {', '.join(removed)}"


def replace_wordy_phrases(text: str) -> tuple[str, int, str]:
    replaced: list[str] = []

    def swap(m: re.Match[str]) -> str:
        phrase = " ".join(m.group(0).lower().split())
        replaced.append(f"{phrase!r} -> {WORDY[phrase]!r}")
        return _match_case(m.group(0), WORDY[phrase])

    new, n = _WORDY.subn(swap, text)
    return new, n, f"replaced {n} wordy/passive phrase(s): {'; '.join(replaced)}"


def split_long_sentences(text: str) -> tuple[str, int, str]:
    """Split each sentence over MAX_SENTENCE_WORDS once, at the split point nearest its middle."""
    new, splits = text, []
    for sent in sentences(text):
        total = _words(sent)
        if total <= MAX_SENTENCE_WORDS:
            continue
        points = [(abs(_words(sent[:m.start()]) - total / 2), m.start(), m.end(), lead)
                  for pattern, lead in _SPLITS for m in pattern.finditer(sent)]
        if not points:
            continue
        _, start, end, lead = min(points)
        rest = f"{lead} {sent[end:]}" if lead else sent[end:]
        left, right = sent[:start].rstrip(" ,;"), _capitalise(rest)
        new = new.replace(sent, f"{left}. {right}", 1)
        splits.append(f"{total} -> {_words(left)} + {_words(right)} words")
    return new, len(splits), f"split {len(splits)} long sentence(s): {', '.join(splits)}"


def tidy_spacing(text: str) -> tuple[str, int, str]:
    new, total = text, 0
    for pattern, repl in _SPACING:
        new, n = pattern.subn(repl, new)
        total += n
    return new, total, f"fixed {total} spacing/punctuation problem(s)"


RULES: dict[str, Callable[[str], tuple[str, int, str]]] = {
    "fix_doubled_words": fix_doubled_words,
    "capitalise_sentences": capitalise_sentences,
    "remove_fillers": remove_fillers,
    "replace_wordy_phrases": replace_wordy_phrases,
    "split_long_sentences": split_long_sentences,
    "tidy_spacing": tidy_spacing,
}
"""Edit rules in tie-break order."""


def best_edit(text: str) -> dict[str, Any] | None:
    """The rule whose edit raises the score most (first rule wins a tie), or None if none does."""
    before = quality_score(text)
    best: dict[str, Any] | None = None
    for name, rule in RULES.items():
        new, changes, detail = rule(text)
        if not changes or new == text:
            continue
        after = quality_score(new)
        if after > before and (best is None or after > best["score_after"]):
            best = {"rule": name, "changes": changes, "detail": detail,
                    "score_before": before, "score_after": after, "text": new}
    return best


def _inputs(event: Event, state: State) -> tuple[str, float, int]:
    content = state.get("content")
    if content is None:
        content = DRAFT.read_text(encoding="utf-8")
    if not isinstance(content, str) or not content.strip():
        raise ValueError(f"quality_improver: 'content' must be non-empty text, got {content!r}")
    target = event.data.get("target_quality", DEFAULT_TARGET)
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise ValueError(f"quality_improver: 'target_quality' must be a number in (0, 1], got {target!r}")
    iteration = state.get("iteration", 0)
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise ValueError(f"quality_improver: 'iteration' must be a non-negative integer, got {iteration!r}")
    return content.strip(), float(target), iteration


def quality_improver(event: Event, state: State) -> State:
    """Apply the best single edit to `content`, re-score it, and flag `loop_complete` at the target."""
    content, target, iteration = _inputs(event, state)
    iteration += 1
    edits = list(state.get("edits") or [])
    edit = best_edit(content) if quality_score(content) < target else None
    if edit is not None:
        content = edit.pop("text")
        edits.append({"iteration": iteration, **edit})
    score = quality_score(content)

    out = state.clone()
    out.set("content", content)
    out.set("iteration", iteration)
    out.set("quality_score", score)
    out.set("quality_metrics", measure(content))
    out.set("edits", edits)
    out.set_meta("loop_iteration", str(iteration))
    out.set_meta("quality_score", f"{score:.2f}")
    if score >= target:
        out.set("loop_complete", True)
        out.set_meta("completion_reason", "quality_threshold_met")
    elif edit is None:
        out.set("loop_complete", True)
        out.set_meta("completion_reason", "no_further_improvement")
    return out
