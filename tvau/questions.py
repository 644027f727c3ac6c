"""Every question the project's dialogues ask, in one place: the SFT dialogues (tvau.construct.dialogue),
the chat layout and evaluation (tvau.model.chat, tvau.evaluate), the embedded LM's pretraining
(tvau.pretrain.language) and the tiny tokenizer's corpus (tvau.model.tiny) all import them from here,
so a reworded question changes every consumer at once (and DVC reruns each stage that lists this file).
"""

from __future__ import annotations

# T-VAU's first question and its follow-ups (docs/method.md section 7), in dialogue order.
Q_ANOMALY = "Is there any anomaly in the video?"
Q_TARGET = "Describe the anomaly target's features."
Q_MOTION = "What is its motion state?"
Q_FROM_TO = "From where to where does it move?"
Q_ENV = "Describe the environment."
FOLLOW_UPS: tuple[str, ...] = (Q_TARGET, Q_MOTION, Q_FROM_TO, Q_ENV)

# Phase A of the curriculum (holistic narratives; docs/method.md section 6).
Q_OBJECTS = "Describe the people and objects in the video."
Q_MOVES = "How does each of them move?"

# The embedded LM's generic pretraining dialogues (never about anomalies).
Q_WHAT = "What is in the video?"
Q_DOING = "What is {who} doing?"
Q_MOVE = "How does it move?"
# One object, named by the 3x3 region it is mostly in: the way stage 2 points at the anomaly (RAE's
# region prompt), so describing "what is in the left" is what the model already knows when T-VAU
# asks for "the anomaly target's features".
Q_DESCRIBE_AT = "Describe what is in the {region}."
Q_COLOR = "What colour is it?"
