"""RAE, the Region-aware Anomaly Encoder (docs/method.md section 5).

From AHD's class logits H_c (T', 2, H', W') it makes (T'-1) x 20 prompt tokens of width D:
motion cue X[t] = H_c[t+1] - H_c[t] (on class probabilities by default, see ModelConfig.rae_input),
three 3x3 convolutions, then
- region branch: adaptive average pool to 3x3 -> MLP -> 9 region tokens per step,
- global branch: spatial mean -> MLP -> 1 global token per step,
- 10 learnable base tokens broadcast over steps,
concatenated per step as [P_base, P_region, p_global] and flattened over steps.
"""

from __future__ import annotations

from typing import get_args

import torch
from torch import nn

from tvau.model.config import RaeInput

REGION_GRID = 3  # the 3x3 position vocabulary of the dialogue (tvau.vocab.REGIONS_3X3)
INPUT_KINDS = get_args(RaeInput)  # what the convolutions see per step (ModelConfig.rae_input says why)


def _mlp(i: int, hidden: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, hidden), nn.ReLU(), nn.Linear(hidden, o))


class RAE(nn.Module):
    def __init__(self, text_dim: int, channels: tuple[int, int, int] = (32, 48, 96), hidden: int = 1024,
                 base_tokens: int = 10, input_kind: str = "probs", logit_scale: float = 100.0):
        super().__init__()
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"rae_input must be one of {list(INPUT_KINDS)}, got {input_kind!r}")
        c1, c2, c3 = channels
        self.convs = nn.Sequential(
            nn.Conv2d(2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
        )
        self.region_mlp = _mlp(c3, hidden, text_dim)
        self.global_mlp = _mlp(c3, hidden, text_dim)
        self.base = nn.Parameter(torch.randn(base_tokens, text_dim) * 0.02)
        self.input_kind = input_kind
        self.logit_scale = logit_scale

    @property
    def tokens_per_step(self) -> int:
        return self.base.shape[0] + REGION_GRID * REGION_GRID + 1  # 10 + 9 + 1 = 20

    def num_tokens(self, t_grid: int) -> int:
        """Prompt tokens for a clip with t_grid temporal patches: (T'-1) * 20."""
        return max(0, t_grid - 1) * self.tokens_per_step

    def motion(self, logits: torch.Tensor) -> torch.Tensor:
        """H_c (T', 2, H', W') -> the motion cue X (T'-1, 2, H', W'): X[t] = H_c[t+1] - H_c[t] on
        probabilities or logits / logit_scale; for "probs_level", channel 0 is the abnormal
        probability's change and channel 1 its value at t+1."""
        if self.input_kind == "logits":
            x = logits.float() / self.logit_scale
            return x[1:] - x[:-1]
        x = torch.softmax(logits.float(), dim=1)
        if self.input_kind == "probs":
            return x[1:] - x[:-1]
        p = x[:, 1:2]  # (T', 1, H', W') abnormal probability
        return torch.cat([p[1:] - p[:-1], p[1:]], dim=1)

    def tokens(self, d: torch.Tensor) -> torch.Tensor:
        """Motion cues (N, 2, H', W') of any number of steps (of one clip or of several clips stacked:
        every step is independent from here on) -> (N * 20, D), step-major."""
        steps = d.shape[0]
        if steps == 0:
            return self.base.new_zeros(0, self.base.shape[1])
        f = self.convs(d)  # (N, 96, H', W')
        regions = nn.functional.adaptive_avg_pool2d(f, REGION_GRID).flatten(2).transpose(1, 2)  # (N, 9, 96)
        glob = f.mean(dim=(2, 3))[:, None]  # (N, 1, 96)
        tokens = torch.cat([self.base.expand(steps, -1, -1), self.region_mlp(regions), self.global_mlp(glob)], dim=1)
        return tokens.reshape(steps * self.tokens_per_step, -1)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """H_c (T', 2, H', W') -> P_An ((T'-1) * 20, D), step-major."""
        return self.tokens(self.motion(logits))
