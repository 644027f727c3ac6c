"""The dialogue layout: Qwen2.5-VL's chat format plus the anomaly prompt block (docs/method.md sections 5, 7).

One user turn carrying the clip looks like

    <|im_start|>user\n<|vision_start|><|video_pad|> x N<|vision_end|>
    <|anomaly_prompt_start|><|anomaly_prompt_pad|> x (T'-1)*20<|anomaly_prompt_end|>{question}<|im_end|>\n

with N = T' * H' * W' / 4 merged video tokens. Later turns are text only. We build token ids
directly (instead of a Jinja chat template) so that the same code serves the tiny and the 7B
tokenizer and the expanded positions are counted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from tvau.questions import FOLLOW_UPS, Q_ANOMALY  # noqa: F401  (the paper's questions, re-exported)

IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
VIDEO_PAD, IMAGE_PAD, VISION_PAD = "<|video_pad|>", "<|image_pad|>", "<|vision_pad|>"
ANOMALY_START = "<|anomaly_prompt_start|>"
ANOMALY_PAD = "<|anomaly_prompt_pad|>"
ANOMALY_END = "<|anomaly_prompt_end|>"
QWEN_SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END, VISION_START, VISION_END, VISION_PAD, IMAGE_PAD, VIDEO_PAD)
ANOMALY_TOKENS = (ANOMALY_START, ANOMALY_PAD, ANOMALY_END)



@dataclass
class Prompt:
    """A tokenised conversation ready for the LM."""

    input_ids: torch.Tensor  # (1, L) long
    mm_token_type_ids: torch.Tensor  # (1, L) int: 0 text, 2 video (transformers' convention)
    labels: torch.Tensor  # (1, L) long: assistant answer tokens, -100 elsewhere
    anomaly_positions: torch.Tensor  # (P,) long: positions of the expanded anomaly pad tokens
    video_positions: torch.Tensor  # (N,) long


@dataclass
class TokenTable:
    """Ids of the tokens the layout needs, resolved once from a tokenizer (and checked distinct)."""

    im_start: int
    im_end: int
    vision_start: int
    vision_end: int
    video: int
    anomaly_start: int
    anomaly_pad: int
    anomaly_end: int
    newline: list[int] = field(default_factory=list)

    @classmethod
    def from_tokenizer(cls, tok) -> TokenTable:
        names = {"im_start": IM_START, "im_end": IM_END, "vision_start": VISION_START, "vision_end": VISION_END,
                 "video": VIDEO_PAD, "anomaly_start": ANOMALY_START, "anomaly_pad": ANOMALY_PAD,
                 "anomaly_end": ANOMALY_END}
        ids = {k: tok.convert_tokens_to_ids(v) for k, v in names.items()}
        unk = getattr(tok, "unk_token_id", None)
        missing = [names[k] for k, i in ids.items() if i is None or (unk is not None and i == unk)]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")
        if len(set(ids.values())) != len(ids):
            # The thesis processor could alias the anomaly pad to the video token: refuse any aliasing.
            raise ValueError(f"special tokens share ids: {ids}")
        return cls(**ids, newline=tok.encode("\n", add_special_tokens=False))


def build_prompt(
    tok,
    table: TokenTable,
    system: str,
    turns: list[tuple[str, str | None]],
    num_video_tokens: int | None,
    num_anomaly_tokens: int,
) -> Prompt:
    """Token ids of a conversation. `turns` are (question, answer) pairs; the last answer may be None,
    in which case the sequence ends with the assistant header (generation prompt). The clip (and the
    anomaly block, when num_anomaly_tokens > 0) goes into the first user turn; no clip when
    num_video_tokens is None."""
    ids: list[int] = []
    types: list[int] = []
    labels: list[int] = []

    reserved = {table.im_start, table.im_end, table.vision_start, table.vision_end, table.video,
                table.anomaly_start, table.anomaly_pad, table.anomaly_end}

    def text(s: str, label: bool = False) -> None:
        t = tok.encode(s, add_special_tokens=False)
        if reserved.intersection(t):  # e.g. a question that spells "<|video_pad|>"
            raise ValueError(f"text contains a reserved chat/vision/anomaly token: {s!r}")
        ids.extend(t)
        types.extend([0] * len(t))
        labels.extend(t if label else [-100] * len(t))

    def special(i: int, n: int = 1, kind: int = 0, label: bool = False) -> None:
        ids.extend([i] * n)
        types.extend([kind] * n)
        labels.extend([i] * n if label else [-100] * n)

    nl = table.newline
    special(table.im_start)
    text(f"system\n{system}")
    special(table.im_end)
    text("\n")
    for k, (question, answer) in enumerate(turns):
        if k < len(turns) - 1 and answer is None:
            raise ValueError(f"turn {k} has no answer but is followed by more turns")
        special(table.im_start)
        text("user\n")
        if k == 0 and num_video_tokens is not None:
            special(table.vision_start)
            special(table.video, num_video_tokens, kind=2)
            special(table.vision_end)
            if num_anomaly_tokens > 0:
                special(table.anomaly_start)
                special(table.anomaly_pad, num_anomaly_tokens)
                special(table.anomaly_end)
        text(question)
        special(table.im_end)
        text("\n")
        special(table.im_start)
        text("assistant\n")
        if answer is not None:
            text(answer, label=True)
            special(table.im_end, label=True)  # the model must learn to stop
            ids.extend(nl)
            types.extend([0] * len(nl))
            labels.extend([-100] * len(nl))
    input_ids = torch.tensor([ids], dtype=torch.long)
    return Prompt(
        input_ids=input_ids,
        mm_token_type_ids=torch.tensor([types], dtype=torch.int32),
        labels=torch.tensor([labels], dtype=torch.long),
        anomaly_positions=(input_ids[0] == table.anomaly_pad).nonzero().flatten(),
        video_positions=(input_ids[0] == table.video).nonzero().flatten(),
    )


def left_padded_labels(prompts: list[Prompt], length: int) -> torch.Tensor:
    """The prompts' labels (1, L_i) as one (B, length) batch, left-padded with -100 the way
    Backbone.batch_inputs left-pads their inputs, so column j of both is the same token."""
    labels = torch.full((len(prompts), length), -100, dtype=torch.long)
    for i, p in enumerate(prompts):
        labels[i, length - p.labels.shape[1]:] = p.labels[0]
    return labels


def answer_loss(logits: torch.Tensor, labels: torch.Tensor, first_token_weight: float = 1.0,
                first_token_only: bool = False) -> torch.Tensor:
    """Next-token cross-entropy over the answer tokens: logits (B, L, V) and labels (B, L) aligned,
    -100 outside the answers. With first_token_weight w != 1 it is a weighted mean in which the first
    token of each answer counts w times. That token is the answer's decision ("Yes" or "No" to "Is
    there any anomaly in the video?"); in a plain mean it is one of about 65 answer tokens of a phase-B
    dialogue, and the embedded 2-layer LM left it at chance while learning the descriptions (params.yaml,
    train.rae_first_token_weight). w = 1 is the paper's loss (docs/method.md section 6).

    first_token_only: the mean over the answers' first tokens alone (the yes/no warm-up, phase Q of
    train.rae_epochs_q). With the rest of "Yes." in the loss, the "." that the language pretraining
    never put after "Yes" (it says "Yes, ...": cross-entropy 7.9 at the first step) dominated the early
    gradients and the decision stayed at chance."""
    pred, target = logits[:, :-1].flatten(0, 1).float(), labels[:, 1:]
    if first_token_weight == 1.0 and not first_token_only:
        return F.cross_entropy(pred, target.flatten(), ignore_index=-100)
    answer = target != -100
    first = answer & torch.cat([torch.ones_like(answer[:, :1]), ~answer[:, :-1]], dim=1)
    weight = first.float() if first_token_only else answer.float() + (first_token_weight - 1.0) * first.float()
    ce = F.cross_entropy(pred, target.flatten(), ignore_index=-100, reduction="none")
    return (ce * weight.flatten()).sum() / weight.sum()
