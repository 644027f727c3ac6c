"""T-VAU: the frozen Qwen2.5-VL backbone plus AHD, RAE and LoRA (docs/method.md sections 1-7).

One clip, one vision pass: `encode` runs the vision tower once; its tapped maps feed AHD and its merged
tokens feed the LM. `heatmap` reads the abnormal channel; `chat` answers a question in a multi-turn
dialogue with the RAE prompt tokens placed after the video.

    from tvau.config import load_params
    from tvau.model.tvau import TVAU
    model = TVAU.from_params(load_params("params.yaml"))
    h = model.heatmap(clip)                # clip (T, H, W, 3) uint8 -> (T', H', W') in [0, 1]
    r = model.chat(clip, "Is there any anomaly in the video?")
    r = model.chat(clip, "What is its motion state?", history=r.history)

Batches: `encode_batch`, `heatmap_batch`, `chat_batch` and `dialogue_loss_batch` take a list of
clips: one vision-tower call for all of them, AHD and RAE over the stacked clips, one left-padded LM
prefill and one KV cache for greedy decoding. The single-clip methods are batches of one.
`dialogue_batch` runs a whole multi-turn dialogue per clip in one KV cache: the video is prefilled
once, each later turn appends only its own tokens.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tvau.model.ahd import AHD, heatmap_from_logits
from tvau.model.backbone import Backbone, VisionOutput, load_backbone
from tvau.model.chat import answer_loss, left_padded_labels
from tvau.model.config import ModelConfig
from tvau.model.lora import inject_lora, lora_parameters
from tvau.model.rae import RAE
from tvau.questions import Q_ANOMALY

ADAPTER_FORMAT = "tvau-adapters/1"
STAGES = {"frozen": 0, "ahd": 1, "rae": 2}  # stage 1 trains AHD; stage 2 trains RAE + LoRA


@dataclass
class ClipEncoding:
    """A clip after its single vision pass (reuse it across dialogue turns)."""

    vision: VisionOutput
    logits: torch.Tensor | None  # H_c (T', 2, H', W') float32, None when AHD is switched off

    @property
    def grid(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.vision.grid_thw[0].tolist())


@dataclass
class ChatResult:
    answer: str
    heatmap: torch.Tensor | None  # (T', H', W') in [0, 1], None without AHD
    history: list[tuple[str, str]] = field(default_factory=list)  # all turns so far, this one included
    tokens: list[int] | None = None  # the answer's generated ids, stop token excluded (dialogue_batch only)


class TVAU(nn.Module):
    def __init__(self, backbone: Backbone, cfg: ModelConfig, seed: int = 0):
        super().__init__()
        self.backbone = backbone
        self.cfg = cfg
        self.use_ahd = cfg.use_ahd  # ablation switches, may be changed at run time
        self.use_rae = cfg.use_rae
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.ahd = AHD(backbone.vision_width, backbone.text_width, len(backbone.taps), cfg.ahd_hidden,
                           cfg.logit_scale)
            self.rae = RAE(backbone.text_width, cfg.rae_channels, cfg.rae_hidden, cfg.rae_base_tokens,
                           cfg.rae_input, cfg.logit_scale)
            inject_lora(backbone.language_model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
        self.ahd.to(backbone.device)
        self.rae.to(backbone.device)
        for p in lora_parameters(backbone.language_model).values():
            p.data = p.data.to(backbone.device)
        # Yes/no decision threshold on the first answer token of Q_ANOMALY (ours; None = plain greedy,
        # the paper): answer "Yes" when logit(Yes) - logit(No) exceeds it. Fitted on the training clips
        # after stage 2 (tvau.train.calibrate, train.rae_calibrate_decision); saved with the adapters.
        # A calibrated decision is a choice between the two words, so that first token is restricted
        # to "Yes" or "No": unrestricted, the embedded LM opened 4 of 150 validation answers with
        # "It is running." (no answer at all), 3 of them on clips its margin called anomalous.
        self.decision_offset: float | None = None
        self.set_stage("frozen")
        self.eval()

    @classmethod
    def from_config(cls, cfg: ModelConfig, seed: int = 0) -> TVAU:
        """Load the configured backbone; `seed` initialises AHD, RAE and LoRA."""
        return cls(load_backbone(cfg), cfg, seed)

    @classmethod
    def from_params(cls, params) -> TVAU:
        """From a tvau.config.Params (params.yaml): its model section and global seed."""
        return cls.from_config(params.model, params.seed)

    # --- freezing ---
    def set_stage(self, stage: str | int) -> None:
        """'frozen' (0): nothing trains. 'ahd' (1): AHD only. 'rae' (2): RAE and LoRA only.
        The backbone's own weights never train."""
        if isinstance(stage, str):
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; expected one of {list(STAGES)} or 0/1/2")
            stage = STAGES[stage]
        if stage not in (0, 1, 2):
            raise ValueError(f"unknown stage {stage!r}; expected 0, 1 or 2")
        for p in self.parameters():
            p.requires_grad_(False)
        if stage == 1:
            self.ahd.requires_grad_(True)
        elif stage == 2:
            self.rae.requires_grad_(True)
            for p in lora_parameters(self.backbone.language_model).values():
                p.requires_grad_(True)
        lm = self.backbone.language_model
        if stage == 2 and self.cfg.gradient_checkpointing:
            # Non-reentrant: the LM's own weights are frozen, the gradient flows to LoRA and, through
            # inputs_embeds, to RAE; the reentrant variant would need inputs that require grad.
            # (transformers 5.24 names it activation checkpointing; gradient_checkpointing_* is deprecated.)
            lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        elif lm.is_activation_checkpointing:
            lm.activation_checkpointing_disable()
        self.stage = stage

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # --- vision + AHD ---
    def encode(self, frames: np.ndarray) -> ClipEncoding:
        """One vision pass and (if AHD is on) the class logits H_c. Gradients reach AHD only."""
        return self.encode_batch([frames])[0]

    def encode_batch(self, clips: Sequence[np.ndarray]) -> list[ClipEncoding]:
        """encode() for several clips: one vision-tower call, AHD over the stacked clips."""
        visions = self.backbone.encode_videos(clips)
        logits = self.ahd_batch(visions) if self.use_ahd else [None] * len(visions)
        return [ClipEncoding(v, h) for v, h in zip(visions, logits)]

    def ahd_batch(self, visions: Sequence[VisionOutput]) -> list[torch.Tensor]:
        """AHD's class logits H_c for several vision outputs. AHD works per position, so clips of one
        patch-grid size are stacked along T' (one MLP call per tap for all of them)."""
        anchors = self.backbone.anchors()

        def ahd(group: list[VisionOutput]) -> list[torch.Tensor]:
            feats = [torch.cat([v.taps[k] for v in group]) for k in range(len(group[0].taps))]
            return list(self.ahd(feats, anchors).split([v.taps[0].shape[0] for v in group]))

        return _by_grid(list(visions), lambda v: tuple(v.grid_thw[0, 1:].tolist()), ahd)

    def _encoding(self, clip) -> ClipEncoding:
        return clip if isinstance(clip, ClipEncoding) else self.encode(clip)

    def _encodings(self, clips) -> list[ClipEncoding]:
        """Clips ((T, H, W, 3) arrays or ClipEncodings) -> encodings; raw clips share one batch."""
        raw = [i for i, c in enumerate(clips) if not isinstance(c, ClipEncoding)]
        encs = list(clips)
        for i, e in zip(raw, self.encode_batch([clips[i] for i in raw]) if raw else []):
            encs[i] = e
        return encs

    @torch.no_grad()
    def heatmap(self, clip) -> torch.Tensor:
        """(T', H', W') float32 abnormal probability in [0, 1] on the patch grid."""
        enc = self._encoding(clip)
        if enc.logits is None:
            raise RuntimeError("AHD is switched off (use_ahd=False): there is no heatmap")
        return heatmap_from_logits(enc.logits).cpu()

    @torch.no_grad()
    def heatmap_batch(self, clips) -> list[torch.Tensor]:
        """heatmap() for several clips (arrays or ClipEncodings) with one vision call."""
        return [self.heatmap(e) for e in self._encodings(clips)]

    @torch.no_grad()
    def heatmap_frames(self, clip) -> torch.Tensor:
        """(T, H, W) float32 in [0, 1] at the input frame resolution: each temporal slice bilinearly
        upsampled to the frame size and repeated for its two frames (docs/method.md section 4)."""
        enc = self._encoding(clip)
        h = self.heatmap(enc)
        fh, fw = enc.vision.frame_size
        up = F.interpolate(h[:, None], size=(fh, fw), mode="bilinear", align_corners=False)[:, 0]
        tp = self.backbone.preprocessor.temporal_patch_size
        return up.repeat_interleave(tp, dim=0)[: enc.vision.num_frames].clamp(0, 1)

    # --- RAE + LM ---
    def anomaly_tokens(self, enc: ClipEncoding) -> torch.Tensor | None:
        """P_An ((T'-1) * 20, D) or None when RAE is off. Without AHD, RAE sees a constant (uninformative)
        heatmap, so only its base tokens and biases carry information (the paper's w/o-AHD ablation)."""
        return self.anomaly_tokens_batch([enc])[0]

    def anomaly_tokens_batch(self, encs: Sequence[ClipEncoding]) -> list[torch.Tensor | None]:
        """anomaly_tokens() for several clips: motion cues per clip, RAE's convolutions and MLPs over
        the stacked steps of all clips of one grid size."""
        if not self.use_rae:
            return [None] * len(encs)

        def logits_of(enc: ClipEncoding) -> torch.Tensor:
            if enc.logits is not None:
                return enc.logits
            t, h, w = enc.grid
            return torch.zeros(t, 2, h, w, device=self.backbone.device)

        def rae(group: list[ClipEncoding]) -> list[torch.Tensor]:
            cues = [self.rae.motion(logits_of(e)) for e in group]
            tokens = self.rae.tokens(torch.cat(cues))
            return list(tokens.split([c.shape[0] * self.rae.tokens_per_step for c in cues]))

        return _by_grid(list(encs), lambda e: e.grid[1:], rae)

    def _lm_inputs(self, enc: ClipEncoding, turns: list[tuple[str, str | None]],
                   tokens: torch.Tensor | None | str = "compute"):
        if isinstance(tokens, str):
            tokens = self.anomaly_tokens(enc)
        n = 0 if tokens is None else tokens.shape[0]
        prompt = self.backbone.prompt(turns, enc.vision.grid_thw, num_anomaly_tokens=n)
        embeds = self.backbone.embed(prompt, enc.vision.video_embeds, tokens)
        return prompt, embeds, self.backbone.position_ids(prompt, enc.vision.grid_thw)

    def _lm_batch(self, encs: list[ClipEncoding], conversations: list[list[tuple[str, str | None]]],
                  tokens: list[torch.Tensor | None] | None = None):
        """Per-sample prompts, and the left-padded batch (embeds, attention mask, positions). `tokens`:
        the clips' anomaly prompt tokens if already computed."""
        if tokens is None:
            tokens = self.anomaly_tokens_batch(encs)
        per = [self._lm_inputs(e, turns, t) for e, turns, t in zip(encs, conversations, tokens)]
        embeds, mask, pos = self.backbone.batch_inputs([p[1] for p in per], [p[2] for p in per])
        return [p[0] for p in per], embeds, mask, pos

    @torch.no_grad()
    def chat(self, clip, question: str, history: list[tuple[str, str]] | None = None,
             max_new_tokens: int | None = None) -> ChatResult:
        """Answer `question` about `clip` ((T, H, W, 3) uint8 or a ClipEncoding) after `history`."""
        return self.chat_batch([clip], [question], [history], max_new_tokens)[0]

    @torch.no_grad()
    def chat_batch(self, clips, questions: str | Sequence[str],
                   histories: Sequence[list[tuple[str, str]] | None] | None = None,
                   max_new_tokens: int | None = None) -> list[ChatResult]:
        """chat() for several clips at once (one question for all, or one per clip; one history per
        clip or none): one vision call for the raw clips, one left-padded prefill, one KV cache."""
        n = len(clips)
        questions = [questions] * n if isinstance(questions, str) else list(questions)
        histories = list(histories) if histories is not None else [None] * n
        if not len(questions) == len(histories) == n:
            raise ValueError(f"{n} clips, {len(questions)} questions, {len(histories)} histories")
        if n == 0:
            return []
        encs = self._encodings(clips)
        convs = [[*(h or []), (q, None)] for q, h in zip(questions, histories)]
        _, embeds, mask, pos = self._lm_batch(encs, convs)
        answers = self.backbone.greedy_decode_batch(embeds, pos, max_new_tokens or self.cfg.max_new_tokens,
                                                    attention_mask=mask if n > 1 else None,
                                                    first_logit_bias=self._decision_bias(questions, histories))
        return [ChatResult(a, heatmap_from_logits(e.logits).cpu() if e.logits is not None else None,
                           [*(h or []), (q, a)]) for a, e, q, h in zip(answers, encs, questions, histories)]

    @torch.no_grad()
    def dialogue_batch(self, clips, questions: Sequence[str], max_new_tokens: int | None = None,
                       follow_up: Callable[[list[ChatResult]], Iterable[int]] | None = None
                       ) -> list[list[ChatResult]]:
        """A whole dialogue per clip in ONE KV cache: `questions[0]` to every clip (the prompt, and for
        Q_ANOMALY the decision bias, of chat_batch), then `questions[1:]` turn by turn to the clips that
        `follow_up(first-turn results)` names by index (None: all). A later turn appends only its own
        tokens (next_turn_ids) after each clip's generated ids, which serve as the history as they are:
        chat_batch re-tokenises the decoded text instead, which may split it differently. Returns, per
        clip, one ChatResult per turn it was asked (answer, heatmap as chat_batch, history, tokens)."""
        n = len(clips)
        if n == 0 or not questions:
            return [[] for _ in range(n)]
        encs = self._encodings(clips)
        heats = [heatmap_from_logits(e.logits).cpu() if e.logits is not None else None for e in encs]
        m = max_new_tokens or self.cfg.max_new_tokens
        q0 = questions[0]
        _, embeds, mask, pos = self._lm_batch(encs, [[(q0, None)] for _ in encs])
        state = self.backbone.prefill(embeds, pos, mask if n > 1 else None)  # as chat_batch: no mask alone
        tokens = self.backbone.greedy_steps(state, m, self._decision_bias([q0] * n, [None] * n))
        dialogues = [[self._turn(q0, t, h, [])] for t, h in zip(tokens, heats)]
        rows = self._follow_rows(follow_up, [d[0] for d in dialogues], n) if len(questions) > 1 else []
        if rows and rows != list(range(n)):
            state.select(rows)
        for q in questions[1:] if rows else []:
            self.backbone.extend(state, [self.backbone.next_turn_ids(q)] * len(rows))
            for i, t in zip(rows, self.backbone.greedy_steps(state, m)):
                dialogues[i].append(self._turn(q, t, heats[i], dialogues[i][-1].history))
        return dialogues

    def _turn(self, question: str, tokens: list[int], heatmap: torch.Tensor | None,
              history: list[tuple[str, str]]) -> ChatResult:
        """One dialogue turn's result from its generated ids (decoded as greedy_decode_batch does)."""
        answer = self.backbone.tokenizer.decode(tokens, skip_special_tokens=True)
        return ChatResult(answer, heatmap, [*history, (question, answer)], tokens)

    @staticmethod
    def _follow_rows(follow_up, first: list[ChatResult], n: int) -> list[int]:
        """The sorted clip indices that go on after the first turn (all when follow_up is None)."""
        if follow_up is None:
            return list(range(n))
        rows = sorted({int(i) for i in follow_up(first)})
        if rows and not 0 <= rows[0] <= rows[-1] < n:
            raise ValueError(f"follow_up named rows {rows} of a batch of {n}")
        return rows

    def yes_no_ids(self) -> tuple[int, int] | None:
        """Token ids of "Yes" and "No" when each is one token (Qwen2.5's and the embedded tokenizers), else
        None. Tokenised once per model: chat_batch asks on every turn."""
        if not hasattr(self, "_yes_no"):
            tok = self.backbone.tokenizer
            ids = [tok(w, add_special_tokens=False)["input_ids"] for w in ("Yes", "No")]
            self._yes_no = (ids[0][0], ids[1][0]) if all(len(i) == 1 for i in ids) else None
        return self._yes_no

    def _decision_bias(self, questions: Sequence[str], histories: Sequence) -> torch.Tensor | None:
        """(B, V) first-token bias for a conversation's opening Q_ANOMALY when the decision is calibrated:
        -inf on every token but "Yes" and "No", +decision_offset on "No"; None when nothing is biased."""
        ids = self.yes_no_ids() if self.decision_offset is not None else None
        rows = [i for i, (q, h) in enumerate(zip(questions, histories)) if q == Q_ANOMALY and not h]
        if ids is None or not rows:
            return None
        bias = torch.zeros(len(questions), self.backbone.model.lm_head.out_features)
        bias[rows] = float("-inf")
        bias[rows, ids[0]] = 0.0
        bias[rows, ids[1]] = self.decision_offset
        return bias

    @torch.no_grad()
    def decision_margins(self, clips) -> torch.Tensor:
        """(B,) logit("Yes") - logit("No") of the first answer token to Q_ANOMALY, without the offset."""
        ids = self.yes_no_ids()
        if ids is None:
            raise ValueError("the tokenizer splits 'Yes' or 'No' into several tokens: no yes/no margin")
        encs = self._encodings(clips)
        _, embeds, mask, pos = self._lm_batch(encs, [[(Q_ANOMALY, None)] for _ in encs])
        logits = self.backbone.logits(embeds, pos, mask)[:, -1].float()  # left-padded: the last column is next
        return logits[:, ids[0]] - logits[:, ids[1]]

    def dialogue_loss(self, clip, turns: list[tuple[str, str]], first_token_weight: float = 1.0,
                      first_token_only: bool = False) -> torch.Tensor:
        """Stage-2 loss: next-token cross-entropy on the assistant answers of a conversation
        (`first_token_weight`, `first_token_only`: see answer_loss)."""
        enc = self._encoding(clip)
        prompt, embeds, pos = self._lm_inputs(enc, turns)
        logits = self.backbone.logits(embeds, pos)
        return answer_loss(logits, prompt.labels.to(logits.device), first_token_weight, first_token_only)

    def dialogue_loss_batch(self, clips, conversations: Sequence[list[tuple[str, str]]],
                            first_token_weight: float = 1.0, first_token_only: bool = False) -> torch.Tensor:
        """dialogue_loss() over several clips in one left-padded LM forward: the mean over ALL answer
        tokens of the batch (so a clip weighs by its answer length, as in one long sequence)."""
        if len(clips) != len(conversations) or not clips:
            raise ValueError(f"{len(clips)} clips for {len(conversations)} conversations")
        encs = self._encodings(clips)
        prompts, embeds, mask, pos = self._lm_batch(encs, [list(c) for c in conversations])
        logits = self.backbone.logits(embeds, pos, mask)
        return answer_loss(logits, left_padded_labels(prompts, logits.shape[1]).to(logits.device),
                           first_token_weight, first_token_only)

    # --- adapters (AHD + RAE + LoRA) as one safetensors file ---
    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        sd = {f"ahd.{k}": v for k, v in self.ahd.state_dict().items()}
        sd |= {f"rae.{k}": v for k, v in self.rae.state_dict().items()}
        sd |= {f"lora.{k}": v for k, v in lora_parameters(self.backbone.language_model).items()}
        return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}

    def _adapter_meta(self) -> dict:
        cfg = self.cfg.model_dump(mode="json")
        return {"format": ADAPTER_FORMAT, "backbone": self.backbone.source, "taps": self.backbone.taps,
                "vision_width": self.backbone.vision_width, "text_width": self.backbone.text_width} | \
            {k: cfg[k] for k in ADAPTER_CONFIG_KEYS}

    def save_adapters(self, path: str | Path) -> Path:
        """Write AHD, RAE and LoRA weights (a few tens of MB on the 7B) atomically."""
        from safetensors.torch import save_file

        from tvau.storage import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            off = self.decision_offset
            meta = self._adapter_meta() | {"decision_offset": None if off is None else float(off)}
            save_file(self.adapter_state_dict(), str(tmp), metadata={"tvau": json.dumps(meta)})
        return path

    def load_adapters(self, path: str | Path) -> None:
        """Load weights written by save_adapters; refuses files made for another configuration."""
        from safetensors.torch import load_file

        path = Path(path)
        meta = read_adapter_meta(path)
        try:
            sd = load_file(str(path))
        except Exception as exc:  # safetensors raises several types on corrupt files
            raise ValueError(f"{path}: not a readable safetensors adapter file ({exc})") from exc
        mine = self._adapter_meta()
        diff = {k: (meta.get(k), v) for k, v in mine.items() if k != "backbone" and meta.get(k) != v}
        if diff:
            raise ValueError(f"{path}: made for another model configuration: {diff} (file, this model)")
        groups = {"ahd": {}, "rae": {}, "lora": {}}
        for k, v in sd.items():
            head, _, rest = k.partition(".")
            if head not in groups:
                raise ValueError(f"{path}: unexpected tensor {k!r}")
            groups[head][rest] = v
        try:
            self.ahd.load_state_dict(groups["ahd"])
            self.rae.load_state_dict(groups["rae"])
        except RuntimeError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        lora = lora_parameters(self.backbone.language_model)
        if set(lora) != set(groups["lora"]):
            raise ValueError(f"{path}: LoRA tensors do not match this model's LoRA layers")
        with torch.no_grad():
            for k, p in lora.items():
                p.copy_(groups["lora"][k])
        off = meta.get("decision_offset")  # null or absent (older files): plain greedy
        self.decision_offset = None if off is None else float(off)


# The params.yaml `model` keys an adapter file records and must match when loaded (shapes and what
# the weights mean; the backbone is recorded by its resolved source and widths instead).
ADAPTER_CONFIG_KEYS = ("ahd_hidden", "rae_channels", "rae_hidden", "rae_base_tokens", "rae_input", "lora_r",
                       "lora_alpha", "lora_targets")


def read_adapter_meta(path: str | Path) -> dict:
    """The configuration an adapter file (TVAU.save_adapters) was written for, from its header alone.
    ValueError names the file when it is unreadable or no T-VAU adapter file; FileNotFoundError when absent."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such adapter file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("tvau", "{}"))
    except Exception as exc:  # safetensors raises several types on corrupt files
        raise ValueError(f"{path}: not a readable safetensors adapter file ({exc})") from exc
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt != ADAPTER_FORMAT:
        raise ValueError(f"{path}: not a T-VAU adapter file (format {fmt!r})")
    return meta


def _by_grid(items: list, key: Callable, run: Callable[[list], list]) -> list:
    """Apply `run` to the items grouped by `key` (a patch-grid size: only equal sizes stack), keeping
    the input order in the result."""
    groups: dict = defaultdict(list)
    for i, item in enumerate(items):
        groups[key(item)].append(i)
    out: list = [None] * len(items)
    for idx in groups.values():
        for i, r in zip(idx, run([items[i] for i in idx])):
            out[i] = r
    return out
