"""The Qwen2.5-VL adapter: load, tapped vision features as spatial maps, text anchors, LM calls.

Everything here is frozen: the backbone is a reference (a local directory or a hub id) that is never
modified. T-VAU's trainable parts (AHD, RAE, LoRA) live in the other modules of tvau.model.

Shapes (one clip): frames (T, H, W, 3) uint8 -> patch grid (T', H', W') = (ceil(T/2), H/14, W/14);
tapped features (T', H', W', C) with C the vision width (7B: 1280); merged video embeddings
(T'*H'*W'/4, D) with D the LLM width (7B: 3584).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tvau.model.chat import ANOMALY_TOKENS, ENDOFTEXT, Prompt, TokenTable, build_prompt
from tvau.model.config import ModelConfig
from tvau.model.preprocess import VisionPreprocessor
from tvau.model.prompts import STATES, prompt_sentences

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def map_taps(taps: tuple[int, ...] | list[int], reference_depth: int, depth: int) -> list[int]:
    """Map 0-based block indexes of a `reference_depth`-block tower onto a `depth`-block tower.

    Block k is the end of the first (k+1)/reference_depth of the tower; it maps to the block that
    ends closest to the same fraction: round((k+1) * depth / reference_depth) - 1, clamped to
    [0, depth-1]. Duplicates are dropped (keeping order). Examples, reference 32: depth 32 keeps
    (0, 7, 15, 23, 31); depth 8 gives (0, 1, 3, 5, 7); depth 4 gives (0, 1, 2, 3).
    """
    out: list[int] = []
    for k in taps:
        if not 0 <= k < reference_depth:
            raise ValueError(f"tap {k} is outside a {reference_depth}-block reference tower")
        j = min(depth - 1, max(0, math.floor((k + 1) * depth / reference_depth + 0.5) - 1))
        if j not in out:
            out.append(j)
    return out


def window_order_to_spatial(hidden: torch.Tensor, window_index: torch.Tensor, grid_thw: tuple[int, int, int],
                            merge: int) -> torch.Tensor:
    """Undo the vision tower's two orderings. hidden (S, C) in window order, S = T'*H'*W' ->
    (T', H', W', C) in raster order.

    Inside the tower the sequence holds merge units (merge x merge patches, contiguous) permuted by
    `window_index` (unit i of the windowed sequence is raster unit window_index[i]). argsort undoes
    the permutation; then each unit's 2x2 patches are put back at (2*hu + i, 2*wu + j).
    """
    t, h, w = grid_thw
    unit = merge * merge
    s, c = hidden.shape
    if s != t * h * w:
        raise ValueError(f"{s} tokens do not fill the grid {grid_thw}")
    units = hidden.view(s // unit, unit, c)[torch.argsort(window_index)]
    x = units.view(t, h // merge, w // merge, merge, merge, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(t, h, w, c)


@dataclass
class VisionOutput:
    """One pass of the vision tower over one clip."""

    video_embeds: torch.Tensor  # (T'*H'*W'/4, D): merged tokens for the LM, raster order
    taps: list[torch.Tensor]  # per tapped block, (T', H', W', C) pre-merger features, float32
    grid_thw: torch.Tensor  # (1, 3) long: [[T', H', W']]
    frame_size: tuple[int, int]  # (H, W) of the input frames (before any resize)
    num_frames: int  # T of the input clip


@dataclass
class Decoding:
    """A batch of B conversations in one KV cache, between prefill/extend and greedy_steps (or
    between turns): what continuing each row needs. L below is the cache length."""

    cache: object  # transformers DynamicCache over L slots per row
    mask: torch.Tensor | None  # (B, L) long, 0 on left padding and a stopped row's filler slots; None: no 0
    next_pos: torch.Tensor  # (B,) long: each row's next M-RoPE position (its last real position + 1)
    hidden: torch.Tensor | None  # (B, D) output of the last column, the next token's; None once decoded from

    def select(self, rows: Sequence[int]) -> None:
        """Keep only `rows` (in that order): the conversations that go on."""
        idx = torch.tensor(list(rows), dtype=torch.long, device=self.next_pos.device)
        self.cache.batch_select_indices(idx)
        self.next_pos = self.next_pos[idx]
        self.mask = None if self.mask is None else self.mask[idx]
        self.hidden = None if self.hidden is None else self.hidden[idx]


class Backbone(nn.Module):
    """A frozen Qwen2.5-VL with the entry points T-VAU needs. Build with `load_backbone`."""

    def __init__(self, model, tokenizer, preprocessor: VisionPreprocessor, source: str,
                 taps: list[int], video_fps: float = 24.0, system_prompt: str = "You are a helpful assistant.",
                 attn_implementation: str = "auto"):
        super().__init__()
        self.model = model  # Qwen2_5_VLForConditionalGeneration
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        self.source = source
        self.video_fps = video_fps
        self.system_prompt = system_prompt
        depth = len(self.visual.blocks)
        bad = [i for i in taps if not 0 <= i < depth]
        if bad:
            raise ValueError(f"taps {bad} outside the {depth}-block vision tower of {source}")
        self.taps = list(taps)
        self.table = TokenTable.from_tokenizer(tokenizer)
        if self.table.anomaly_pad == self.model.config.video_token_id:
            raise ValueError("the anomaly pad token aliases the video token")
        self._anchors: torch.Tensor | None = None
        self._next_turn: dict[str, list[int]] = {}
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.attn_implementation = self.set_attention(attn_implementation)

    def set_attention(self, choice: str) -> str:
        """Vision-tower attention (tvau.model.attention): 'auto' | 'eager' | 'sdpa' | 'varlen' |
        'flash_attn' | 'padded'. Returns the transformers name now in the vision config."""
        from tvau.model.attention import apply

        self.attn_implementation = apply(self.model, choice)
        return self.attn_implementation

    # --- sub-modules (transformers' layout: model.model.visual / language_model, model.lm_head) ---
    @property
    def visual(self):
        return self.model.model.visual

    @property
    def language_model(self):
        return self.model.model.language_model

    @property
    def vision_width(self) -> int:
        return self.model.config.vision_config.hidden_size

    @property
    def text_width(self) -> int:
        return self.model.config.text_config.hidden_size

    @property
    def device(self) -> torch.device:
        return self.model.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.lm_head.weight.dtype

    # --- vision ---
    @torch.no_grad()
    def encode_video(self, frames: np.ndarray) -> VisionOutput:
        """Run the vision tower once: merged LM tokens and the tapped pre-merger maps (a batch of one)."""
        return self.encode_videos([frames])[0]

    @torch.no_grad()
    def encode_videos(self, clips: Sequence[np.ndarray]) -> list[VisionOutput]:
        """Several clips through the vision tower in ONE call: their patches are concatenated and
        grid_thw gets one row per clip, so each clip's windows (and frames, in the full-attention
        blocks) are just more variable-length attention segments; nothing attends across clips
        (transformers builds the segments per grid row). Clips may differ in size and length."""
        if len(clips) == 0:
            return []
        prepared = [self.preprocessor(frames) for frames in clips]
        pixels = torch.cat([p for p, _ in prepared]).to(self.device, self.dtype)
        grid = torch.cat([g for _, g in prepared]).to(self.device)
        captured: dict[int, torch.Tensor] = {}
        hooks = [
            self.visual.blocks[i].register_forward_hook(
                lambda _m, _i, out, i=i: captured.__setitem__(i, out[0] if isinstance(out, tuple) else out))
            for i in self.taps
        ]
        try:
            out = self.visual(pixels, grid_thw=grid)
        finally:
            for h in hooks:
                h.remove()
        vc = self.model.config.vision_config
        from transformers.vision_utils import get_vision_window_index

        unit = vc.spatial_merge_size ** 2
        sizes = [int(g.prod()) for g in grid]  # patches per clip: the window-ordered sequence is clip-major
        taps = {i: captured[i].split(sizes) for i in self.taps}
        merged = out.pooler_output.split([s // unit for s in sizes])
        results = []
        for k, frames in enumerate(clips):
            g = grid[k:k + 1]
            window_index, _ = get_vision_window_index(g.cpu(), spatial_merge_size=vc.spatial_merge_size,
                                                      window_size=vc.window_size, patch_size=vc.patch_size)
            gthw = tuple(int(v) for v in g[0].tolist())
            maps = [window_order_to_spatial(taps[i][k].float(), window_index.to(self.device), gthw,
                                            vc.spatial_merge_size) for i in self.taps]
            results.append(VisionOutput(video_embeds=merged[k], taps=maps, grid_thw=g,
                                        frame_size=(int(frames.shape[1]), int(frames.shape[2])),
                                        num_frames=int(frames.shape[0])))
        return results

    # --- text anchors S (docs/method.md section 3) ---
    @torch.no_grad()
    def anchors(self) -> torch.Tensor:
        """S (2, D) float32: per state, the mean over sentences of the mean input embedding of each
        sentence's tokens (index 0 normal, 1 abnormal). A constant of the backbone: cached."""
        if self._anchors is None:
            table = self.language_model.get_input_embeddings().weight
            rows = []
            for state in STATES:
                per_sentence = []
                for s in prompt_sentences(state):
                    ids = torch.tensor(self.tokenizer.encode(s, add_special_tokens=False), device=table.device)
                    per_sentence.append(table[ids].float().mean(0))
                rows.append(torch.stack(per_sentence).mean(0))
            self._anchors = torch.stack(rows)
        return self._anchors

    # --- language model ---
    def num_video_tokens(self, grid_thw: torch.Tensor) -> int:
        return int(grid_thw.prod()) // self.model.config.vision_config.spatial_merge_size ** 2

    def prompt(self, turns: list[tuple[str, str | None]], grid_thw: torch.Tensor | None,
               num_anomaly_tokens: int = 0) -> Prompt:
        n = None if grid_thw is None else self.num_video_tokens(grid_thw)
        return build_prompt(self.tokenizer, self.table, self.system_prompt, turns, n, num_anomaly_tokens)

    def position_ids(self, prompt: Prompt, grid_thw: torch.Tensor | None) -> torch.Tensor:
        """3-D M-RoPE positions (3, 1, L) from transformers' get_rope_index."""
        ids = prompt.input_ids.to(self.device)
        if grid_thw is None:  # text only: plain 1-D positions on all three axes
            return torch.arange(ids.shape[1], device=self.device).view(1, 1, -1).expand(3, 1, -1)
        spg = torch.tensor([self.preprocessor.temporal_patch_size / self.video_fps])
        pos, _ = self.model.model.get_rope_index(ids, prompt.mm_token_type_ids.to(self.device),
                                                 video_grid_thw=grid_thw, second_per_grid_ts=spg)
        return pos

    def embed(self, prompt: Prompt, video_embeds: torch.Tensor | None,
              anomaly_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """inputs_embeds (1, L, D): token embeddings with the video positions replaced by the merged
        vision tokens and the anomaly pad positions by the RAE prompt tokens."""
        ids = prompt.input_ids.to(self.device)
        emb = self.language_model.get_input_embeddings()(ids)
        if video_embeds is not None:
            if video_embeds.shape[0] != prompt.video_positions.numel():
                raise ValueError(f"{video_embeds.shape[0]} video embeddings for "
                                 f"{prompt.video_positions.numel()} video tokens")
            emb = emb.index_copy(1, prompt.video_positions.to(self.device), video_embeds.to(emb.dtype)[None])
        n_anom = prompt.anomaly_positions.numel()
        if n_anom:
            if anomaly_embeds is None or anomaly_embeds.shape[0] != n_anom:
                got = None if anomaly_embeds is None else anomaly_embeds.shape[0]
                raise ValueError(f"{n_anom} anomaly prompt positions but {got} prompt tokens")
            emb = emb.index_copy(1, prompt.anomaly_positions.to(self.device), anomaly_embeds.to(emb.dtype)[None])
        return emb

    def logits(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor,
               attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Full-sequence LM forward with inputs_embeds: (B, L, vocab); attention_mask (B, L) for a
        left-padded batch (batch_inputs), None for one unpadded prompt."""
        out = self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  position_ids=position_ids, use_cache=False)
        return self.model.lm_head(out.last_hidden_state)

    def batch_inputs(self, embeds: Sequence[torch.Tensor], positions: Sequence[torch.Tensor]):
        """Left-pad per-sample inputs_embeds (1, L_i, D) and M-RoPE positions (3, 1, L_i) into one batch:
        (B, L, D), attention mask (B, L) long (0 on padding) and positions (3, B, L). Left padding
        keeps every sample's last token in the last column, where decoding continues. Padded slots
        get zero embeddings and position 0; the mask keeps them out of every real token's attention,
        and their own outputs are never read. Each sample keeps its own 3-D positions, so a batch
        computes what the samples compute one at a time."""
        if len(embeds) != len(positions) or not embeds:
            raise ValueError(f"{len(embeds)} embeddings for {len(positions)} position tensors")
        length = max(e.shape[1] for e in embeds)
        b, d = len(embeds), embeds[0].shape[-1]
        out = embeds[0].new_zeros(b, length, d)
        mask = torch.zeros(b, length, dtype=torch.long, device=out.device)
        pos = torch.zeros(3, b, length, dtype=torch.long, device=out.device)
        for i, (e, p) in enumerate(zip(embeds, positions)):
            n = e.shape[1]
            out[i, length - n:] = e[0]
            mask[i, length - n:] = 1
            pos[:, i, length - n:] = p[:, 0].to(out.device)
        return out, mask, pos

    @torch.no_grad()
    def greedy_decode(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor, max_new_tokens: int) -> str:
        """Greedy decoding with a KV cache (a batch of one of greedy_decode_batch)."""
        return self.greedy_decode_batch(inputs_embeds, position_ids, max_new_tokens)[0]

    @torch.no_grad()
    def greedy_decode_batch(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor, max_new_tokens: int,
                            attention_mask: torch.Tensor | None = None,
                            first_logit_bias: torch.Tensor | None = None) -> list[str]:
        """Greedy answers of B left-padded prompts (see greedy_tokens_batch), decoded to text."""
        tokens = self.greedy_tokens_batch(inputs_embeds, position_ids, max_new_tokens, attention_mask,
                                          first_logit_bias)
        return [self.tokenizer.decode(t, skip_special_tokens=True) for t in tokens]

    @torch.no_grad()
    def greedy_tokens_batch(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor, max_new_tokens: int,
                            attention_mask: torch.Tensor | None = None,
                            first_logit_bias: torch.Tensor | None = None) -> list[list[int]]:
        """Greedy decoding of B left-padded prompts with one KV cache: inputs_embeds (B, L, D), position_ids
        (3, B, L), attention_mask (B, L) (None: no padding). Returns each sample's new token ids, without
        the stop token (prefill, then greedy_steps: see there)."""
        state = self.prefill(inputs_embeds, position_ids, attention_mask)
        return self.greedy_steps(state, max_new_tokens, first_logit_bias)

    @torch.no_grad()
    def prefill(self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> Decoding:
        """Run B left-padded prompts into a fresh KV cache: inputs_embeds (B, L, D), position_ids (3, B, L),
        attention_mask (B, L) (None: no padding). Returns the state that greedy_steps decodes from."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config.text_config)
        out = self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  position_ids=position_ids, cache=cache, use_cache=True)
        if attention_mask is not None:  # padded slots hold position 0; the max is over real tokens only
            next_pos = position_ids.masked_fill(attention_mask[None] == 0, 0).amax(dim=(0, 2)) + 1
        else:
            next_pos = position_ids.amax(dim=(0, 2)) + 1
        return Decoding(cache, attention_mask, next_pos, out.last_hidden_state[:, -1])

    @torch.no_grad()
    def greedy_steps(self, state: Decoding, max_new_tokens: int,
                     first_logit_bias: torch.Tensor | None = None) -> list[list[int]]:
        """Greedy-decode the next answer of every row of `state` (fed a prompt or a turn by prefill or
        extend) and return each row's new token ids, without the stop token. Every new token of a row
        advances all three M-RoPE axes by one from that row's maximum position (Qwen2.5-VL's rope-delta
        rule). A row that has stopped is fed the end-of-text token until all have stopped, in slots its
        mask keeps out of every later attention (so its cache can go on with extend).
        first_logit_bias (B, V), optional: added to the logits of the first new token only (the yes/no
        decision: -inf outside "Yes"/"No" and the threshold TVAU.decision_offset)."""
        if state.hidden is None:
            raise ValueError("the last answer has not been closed: extend the state with the next turn first")
        b = state.next_pos.shape[0]
        eot = self.tokenizer.convert_tokens_to_ids(ENDOFTEXT)
        stop = torch.tensor(sorted({self.table.im_end, eot}), device=self.device)
        generated = torch.empty(b, 0, dtype=torch.long, device=self.device)
        done = torch.zeros(b, dtype=torch.bool, device=self.device)
        embed = self.language_model.get_input_embeddings()
        hidden, state.hidden = state.hidden, None
        for step in range(max_new_tokens):
            logits = self.model.lm_head(hidden)  # (B, V)
            if step == 0 and first_logit_bias is not None:
                logits = logits + first_logit_bias.to(logits)
            tok = logits.argmax(-1)  # (B,)
            done |= torch.isin(tok, stop)
            if bool(done.all()):
                break
            tok = tok.masked_fill(done, eot)
            generated = torch.cat([generated, tok[:, None]], dim=1)
            live = (~done).long()
            if state.mask is None and not bool(live.all()):  # the first masked slot of this batch
                state.mask = torch.ones(b, state.cache.get_seq_length(), dtype=torch.long, device=self.device)
            if state.mask is not None:
                state.mask = torch.cat([state.mask, live[:, None]], dim=1)
            pos = state.next_pos.view(1, b, 1).expand(3, b, 1)
            state.next_pos = state.next_pos + live  # a stopped row's filler slots take no position
            out = self.language_model(inputs_embeds=embed(tok[:, None]), attention_mask=state.mask,
                                      position_ids=pos, cache=state.cache, use_cache=True)
            hidden = out.last_hidden_state[:, -1]
        # eot is a stop token, so within a row it only appears from the step where that sample stopped.
        return [row[:row.index(eot)] if eot in row else row for row in generated.tolist()]

    @torch.no_grad()
    def extend(self, state: Decoding, ids: Sequence[Sequence[int]]) -> None:
        """Feed each row of `state` its own (non-empty) token ids after its last answer, e.g. the tokens
        that close the answer and open the next turn (next_turn_ids). Shorter rows are left-padded inside
        the new block with masked slots, so every row's last token is in the last column, where the next
        answer starts; the real ids take the row's next positions on all three M-RoPE axes."""
        b = state.next_pos.shape[0]
        if len(ids) != b or not all(ids):
            raise ValueError(f"{b} rows need one non-empty id list each, got lengths {[len(i) for i in ids]}")
        width = max(len(i) for i in ids)
        block = torch.zeros(b, width, dtype=torch.long)  # id 0 in the padded slots: masked, never read
        new_mask = torch.zeros(b, width, dtype=torch.long)
        offsets = torch.zeros(b, width, dtype=torch.long)
        for r, row in enumerate(ids):
            block[r, width - len(row):] = torch.tensor(row)
            new_mask[r, width - len(row):] = 1
            offsets[r, width - len(row):] = torch.arange(len(row))
        block, new_mask, offsets = (t.to(self.device) for t in (block, new_mask, offsets))
        if state.mask is None and not bool(new_mask.all()):
            state.mask = torch.ones(b, state.cache.get_seq_length(), dtype=torch.long, device=self.device)
        if state.mask is not None:
            state.mask = torch.cat([state.mask, new_mask], dim=1)
        pos = (state.next_pos[:, None] + offsets).expand(3, b, width)
        state.next_pos = state.next_pos + new_mask.sum(1)
        embeds = self.language_model.get_input_embeddings()(block)
        out = self.language_model(inputs_embeds=embeds, attention_mask=state.mask, position_ids=pos,
                                  cache=state.cache, use_cache=True)
        state.hidden = out.last_hidden_state[:, -1]

    def next_turn_ids(self, question: str) -> list[int]:
        """The ids that close an answer and ask `question` in the next turn, up to its assistant header:
        what build_prompt puts between one answer's text and the next's (so the chat layout has one
        definition). The same for every answer: cached per question."""
        cached = self._next_turn.get(question)
        if cached is None:
            before = self.prompt([("", None)], None).input_ids[0]
            after = self.prompt([("", ""), (question, None)], None).input_ids[0]
            if not torch.equal(after[:before.numel()], before):
                raise ValueError("build_prompt does not extend a conversation by appending to it")
            cached = self._next_turn[question] = after[before.numel():].tolist()
        return list(cached)

    @torch.no_grad()
    def generate(self, frames: np.ndarray | None, prompt: str, max_new_tokens: int = 64) -> str:
        """Plain LVLM answer to `prompt` about `frames` (T, H, W, 3) uint8 (or no video): no AHD, no RAE.
        (Used e.g. as an annotator.) A single image can be passed as a 1-frame clip."""
        vis = self.encode_video(frames) if frames is not None else None
        grid = vis.grid_thw if vis is not None else None
        p = self.prompt([(prompt, None)], grid)
        emb = self.embed(p, vis.video_embeds if vis is not None else None)
        return self.greedy_decode(emb, self.position_ids(p, grid), max_new_tokens)


def _resolve(source: str, cache_dir: str, tiny_seed: int) -> Path:
    """Local directory for a configured backbone. Network is used only for a hub id."""
    if source == "embedded:tiny":
        from tvau.model.tiny import ensure_tiny

        return ensure_tiny(cache_dir, tiny_seed)
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
        return path
    if source.startswith(("/", ".", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        raise FileNotFoundError(f"model.backbone: {source!r} is neither 'embedded:tiny', an existing "
                                "model directory, nor a hub id of the form 'org/name'")
    from huggingface_hub import snapshot_download

    # A hub id was configured explicitly: this is the only place that may touch the network
    # (and it will not when HF_HUB_OFFLINE=1 and the snapshot is not cached).
    return Path(snapshot_download(source))


def load_backbone(cfg: ModelConfig) -> Backbone:
    """Load the configured backbone (frozen, eval mode) on cfg.device in cfg.dtype."""
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    if cfg.dtype not in DTYPES:
        raise ValueError(f"model.dtype: {cfg.dtype!r} is not one of {sorted(DTYPES)}")
    path = _resolve(cfg.backbone, cfg.cache_dir, cfg.tiny_seed)
    offline = {"local_files_only": True}
    tok = AutoTokenizer.from_pretrained(path, **offline)
    missing = [t for t in ANOMALY_TOKENS if t not in tok.get_vocab()]
    if missing:  # a stock Qwen tokenizer: add the three anomaly tokens as special tokens
        from tokenizers import AddedToken

        tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=DTYPES[cfg.dtype], **offline)
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        # Qwen2.5-VL's table has spare rows (152064 > 151668 tokens), so this only runs for other tokenizers.
        model.resize_token_embeddings(len(tok))
    model = model.to(cfg.device).eval()
    taps = map_taps(cfg.taps, cfg.tap_reference_depth, len(model.model.visual.blocks))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return Backbone(model, tok, VisionPreprocessor.from_dir(path), source=cfg.backbone, taps=taps,
                    video_fps=cfg.video_fps, system_prompt=cfg.system_prompt,
                    attn_implementation=cfg.attn_implementation)
