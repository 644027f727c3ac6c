"""T-VAU: the frozen Qwen2.5-VL backbone plus AHD, RAE and LoRA (METHOD.md sections 1-7).

One clip, one vision pass: `encode` runs the vision tower once; its tapped maps feed AHD and its merged
tokens feed the LM. `heatmap` reads the abnormal channel; `chat` answers a question in a multi-turn
dialogue with the RAE prompt tokens placed after the video.

    from tvau.config import load_params
    from tvau.model.tvau import TVAU
    model = TVAU.from_params(load_params("params.yaml"))
    h = model.heatmap(clip)                # clip (T, H, W, 3) uint8 -> (T', H', W') in [0, 1]
    r = model.chat(clip, "Is there any anomaly in the video?")
    r = model.chat(clip, "What is its motion state?", history=r.history)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tvau.model.ahd import AHD, heatmap_from_logits
from tvau.model.backbone import Backbone, VisionOutput, load_backbone
from tvau.model.config import ModelConfig
from tvau.model.lora import inject_lora, lora_parameters
from tvau.model.rae import RAE

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
        self.stage = stage

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # --- vision + AHD ---
    def encode(self, frames: np.ndarray) -> ClipEncoding:
        """One vision pass and (if AHD is on) the class logits H_c. Gradients reach AHD only."""
        vision = self.backbone.encode_video(frames)
        logits = self.ahd(vision.taps, self.backbone.anchors()) if self.use_ahd else None
        return ClipEncoding(vision, logits)

    def _encoding(self, clip) -> ClipEncoding:
        return clip if isinstance(clip, ClipEncoding) else self.encode(clip)

    @torch.no_grad()
    def heatmap(self, clip) -> torch.Tensor:
        """(T', H', W') float32 abnormal probability in [0, 1] on the patch grid."""
        enc = self._encoding(clip)
        if enc.logits is None:
            raise RuntimeError("AHD is switched off (use_ahd=False): there is no heatmap")
        return heatmap_from_logits(enc.logits).cpu()

    @torch.no_grad()
    def heatmap_frames(self, clip) -> torch.Tensor:
        """(T, H, W) float32 in [0, 1] at the input frame resolution: each temporal slice bilinearly
        upsampled to the frame size and repeated for its two frames (METHOD.md section 4)."""
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
        if not self.use_rae:
            return None
        logits = enc.logits
        if logits is None:
            t, h, w = enc.grid
            logits = torch.zeros(t, 2, h, w, device=self.backbone.device)
        return self.rae(logits)

    def _lm_inputs(self, enc: ClipEncoding, turns: list[tuple[str, str | None]]):
        tokens = self.anomaly_tokens(enc)
        n = 0 if tokens is None else tokens.shape[0]
        prompt = self.backbone.prompt(turns, enc.vision.grid_thw, num_anomaly_tokens=n)
        embeds = self.backbone.embed(prompt, enc.vision.video_embeds, tokens)
        return prompt, embeds, self.backbone.position_ids(prompt, enc.vision.grid_thw)

    @torch.no_grad()
    def chat(self, clip, question: str, history: list[tuple[str, str]] | None = None,
             max_new_tokens: int | None = None) -> ChatResult:
        """Answer `question` about `clip` ((T, H, W, 3) uint8 or a ClipEncoding) after `history`."""
        enc = self._encoding(clip)
        turns = [*(history or []), (question, None)]
        _, embeds, pos = self._lm_inputs(enc, turns)
        answer = self.backbone.greedy_decode(embeds, pos, max_new_tokens or self.cfg.max_new_tokens)
        heat = heatmap_from_logits(enc.logits).cpu() if enc.logits is not None else None
        return ChatResult(answer, heat, [*(history or []), (question, answer)])

    def dialogue_loss(self, clip, turns: list[tuple[str, str]]) -> torch.Tensor:
        """Stage-2 loss: next-token cross-entropy on the assistant answers of a conversation."""
        enc = self._encoding(clip)
        prompt, embeds, pos = self._lm_inputs(enc, turns)
        logits = self.backbone.logits(embeds, pos)
        labels = prompt.labels.to(logits.device)
        return F.cross_entropy(logits[0, :-1].float(), labels[0, 1:], ignore_index=-100)

    # --- adapters (AHD + RAE + LoRA) as one safetensors file ---
    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        sd = {f"ahd.{k}": v for k, v in self.ahd.state_dict().items()}
        sd |= {f"rae.{k}": v for k, v in self.rae.state_dict().items()}
        sd |= {f"lora.{k}": v for k, v in lora_parameters(self.backbone.language_model).items()}
        return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}

    def _adapter_meta(self) -> dict:
        c = self.cfg
        return {"format": ADAPTER_FORMAT, "backbone": self.backbone.source, "taps": self.backbone.taps,
                "vision_width": self.backbone.vision_width, "text_width": self.backbone.text_width,
                "ahd_hidden": c.ahd_hidden, "rae_channels": list(c.rae_channels), "rae_hidden": c.rae_hidden,
                "rae_base_tokens": c.rae_base_tokens, "rae_input": c.rae_input, "lora_r": c.lora_r,
                "lora_alpha": c.lora_alpha, "lora_targets": list(c.lora_targets)}

    def save_adapters(self, path: str | Path) -> Path:
        """Write AHD, RAE and LoRA weights (a few tens of MB on the 7B) atomically."""
        from safetensors.torch import save_file

        from tvau.storage import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(self.adapter_state_dict(), str(tmp), metadata={"tvau": json.dumps(self._adapter_meta())})
        return path

    def load_adapters(self, path: str | Path) -> None:
        """Load weights written by save_adapters; refuses files made for another configuration."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such adapter file")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("tvau", "{}"))
            sd = load_file(str(path))
        except Exception as exc:  # safetensors raises several types on corrupt files
            raise ValueError(f"{path}: not a readable safetensors adapter file ({exc})") from exc
        mine = self._adapter_meta()
        if meta.get("format") != ADAPTER_FORMAT:
            raise ValueError(f"{path}: not a T-VAU adapter file (format {meta.get('format')!r})")
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
