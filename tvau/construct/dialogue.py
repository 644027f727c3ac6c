"""Multi-turn SFT dialogues (docs/method.md section 7) from timelines and refined targets.

Phase A (holistic appearance and motion narratives) and phase B (anomaly-focused, from the
refined descriptions) of the stage-2 curriculum (docs/method.md section 6). Each record is one clip:

  {"id", "phase", "video", "split", "source", "start", "stop" (exclusive), "anomalous",
   "messages": [{"role": "user"|"assistant", "content": str}, ...],
   "answers": {"yes_no", "target", "motion", "trajectory"}   # phase B: reference answers for the
                                                             # dialogue metrics (BLEU, accuracy)
  }
"""

from __future__ import annotations

from tvau.construct.sentences import ACTION_PHRASE, MOTION_VERB, appearance, from_to, trajectory
from tvau.questions import Q_ANOMALY, Q_ENV, Q_FROM_TO, Q_MOTION, Q_MOVES, Q_OBJECTS, Q_TARGET


def _turns(pairs: list[tuple[str, str]]) -> list[dict]:
    out = []
    for q, a in pairs:
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return out


def _cap(s: str) -> str:
    return s[0].upper() + s[1:] if s else s


def _listing(phrases: list[str]) -> str:
    if not phrases:
        return ""
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def environment(others: list[dict], has_target: bool) -> str:
    """Answer to 'Describe the environment.' from the other objects' summaries."""
    looks = [appearance(o["category"], o["colors"], o["clothing"]) for o in others]
    if not looks:
        return "Besides the target, the scene is empty." if has_target else "The scene is empty."
    head = "Besides the target, the scene holds " if has_target else "The scene holds "
    return head + _listing(looks) + "."


def phase_a(objects: list[dict]) -> list[dict]:
    """Holistic narrative: every object's appearance, then every object's movement.
    `objects`: dicts with category, colors, clothing, regions, motion_state."""
    if not objects:
        return _turns([(Q_OBJECTS, "The scene is empty."), (Q_MOVES, "Nothing moves in the scene.")])
    looks = [appearance(o["category"], o["colors"], o["clothing"]) for o in objects]
    moves = [_cap(f"{look} {trajectory(o['regions'], o['motion_state'])}.") for look, o in zip(looks, objects)]
    count = f"There {'is' if len(looks) == 1 else 'are'} {len(looks)}: "
    return _turns([(Q_OBJECTS, count + _listing(looks) + "."), (Q_MOVES, " ".join(moves))])


def phase_b_normal(others: list[dict]) -> tuple[list[dict], dict]:
    answers = {"yes_no": "no", "target": "", "motion": "", "trajectory": ""}
    msgs = _turns([(Q_ANOMALY, "No. There is no anomaly in the video."), (Q_ENV, environment(others, False))])
    return msgs, answers


def phase_b_anomalous(target: dict, others: list[dict]) -> tuple[list[dict], dict]:
    """`target`: described_category, described_colors, described_clothing, described_action,
    regions (in the clip), motion_state (measured in the clip)."""
    look = appearance(target["described_category"], target["described_colors"], target["described_clothing"])
    action = ACTION_PHRASE.get(target["described_action"], "")
    regs = target["regions"]
    state = target["motion_state"]
    where = (
        f"from the {regs[0]} to the {regs[-1]}" if regs[0] != regs[-1] else f"in the {regs[0]}"
    )
    q0 = f"Yes. The anomaly is {look}{', ' + action if action else ''}; its motion state is {state}, {where}."
    target_answer = _cap(look) + (f", {action}." if action else ".")
    motion_answer = f"It {MOTION_VERB[state]}: its motion state is {state}."
    traj = from_to(regs)
    msgs = _turns(
        [
            (Q_ANOMALY, q0),
            (Q_TARGET, target_answer),
            (Q_MOTION, motion_answer),
            (Q_FROM_TO, traj),
            (Q_ENV, environment(others, True)),
        ]
    )
    return msgs, {"yes_no": "yes", "target": target_answer, "motion": state, "trajectory": traj}
