"""The normal / abnormal prompt set whose embeddings become AHD's text anchors S (docs/method.md section 3).

The 12 event classes are the paper's (tvau.vocab.EVENT_CLASSES). The paper published only the first
state phrases and templates ("no {} present", "surveillance video without {}", "{}", "CCTV footage
showing {}", "a surveillance video of {}."); the remaining ones below are ours, written in the same
style to reach the paper's counts: 7 phrases per state and 5 templates, English only, so
12 x 7 x 5 = 420 sentences per state (the author's 1,680 also crossed Chinese variants).
"""

from __future__ import annotations

from tvau.vocab import EVENT_CLASSES

NORMAL_STATES: tuple[str, ...] = (
    "no {} present",
    "surveillance video without {}",
    "a normal scene with no {}",
    "nothing unusual, no {}",
    "ordinary activity without any {}",
    "a quiet scene free of {}",
    "regular pedestrians and no {}",
)

ABNORMAL_STATES: tuple[str, ...] = (
    "{}",
    "CCTV footage showing {}",
    "an abnormal event of {}",
    "a scene with {}",
    "suspicious activity: {}",
    "an unusual event showing {}",
    "a dangerous situation with {}",
)

TEMPLATES: tuple[str, ...] = (
    "a surveillance video of {}.",
    "a CCTV frame of {}.",
    "a security camera recording of {}.",
    "a video clip of {}.",
    "footage of {}.",
)

STATES = ("normal", "abnormal")  # index 0 normal, 1 abnormal, as in S


def prompt_sentences(state: str) -> list[str]:
    """All sentences of one state, in a fixed order (class-major, then phrase, then template)."""
    if state not in STATES:
        raise ValueError(f"unknown prompt state {state!r}; expected one of {STATES}")
    phrases = NORMAL_STATES if state == "normal" else ABNORMAL_STATES
    return [t.format(p.format(c)) for c in EVENT_CLASSES for p in phrases for t in TEMPLATES]
