"""AHD, the Anomaly Heatmap Decoder (docs/method.md section 4), and its stage-1 loss.

Per tapped vision block i an MLP maps each position's feature to the LLM width D; a true cosine
similarity over D against the two text anchors (normal, abnormal), times a fixed logit scale of 100,
gives per-layer class logits h^i (T', 2, H', W'); learnable weights w = softmax(theta) fuse them:
H_c = sum_i w_i h^i. The heatmap is softmax over the class axis, abnormal channel.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class AHD(nn.Module):
    def __init__(self, in_dim: int, text_dim: int, num_layers: int, hidden: int = 1024, logit_scale: float = 100.0):
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, text_dim)) for _ in range(num_layers)
        )
        self.theta = nn.Parameter(torch.zeros(num_layers))  # fusion weights before softmax: uniform at start
        self.logit_scale = logit_scale  # fixed, not learned (paper)

    def layer_weights(self) -> torch.Tensor:
        return torch.softmax(self.theta, dim=0)

    def forward(self, feats: list[torch.Tensor], anchors: torch.Tensor) -> torch.Tensor:
        """feats: per tapped layer (T', H', W', C); anchors S (2, D) -> class logits H_c (T', 2, H', W')."""
        if len(feats) != len(self.mlps):
            raise ValueError(f"AHD has {len(self.mlps)} layer MLPs but got {len(feats)} tapped maps")
        a = F.normalize(anchors.float(), dim=-1)  # (2, D)
        w = self.layer_weights()
        fused = None
        for i, (mlp, f) in enumerate(zip(self.mlps, feats)):
            e = F.normalize(mlp(f.float()), dim=-1)  # (T', H', W', D), unit length over D
            h = self.logit_scale * torch.einsum("thwd,cd->tchw", e, a)  # cosine x 100
            fused = w[i] * h if fused is None else fused + w[i] * h
        return fused


def heatmap_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(T', 2, H', W') class logits -> (T', H', W') abnormal probability in [0, 1]."""
    return torch.softmax(logits, dim=1)[:, 1]


def pool_masks(masks: torch.Tensor | np.ndarray, grid_thw: tuple[int, int, int], temporal_patch: int = 2) -> torch.Tensor:
    """Ground-truth pixel masks (T, H, W) bool -> the patch grid (T', H', W') bool tensor, with the
    pooling rule of tvau.data.clips.pool_masks (OR over each frame pair, nearest resize; docs/method.md
    section 4), checked against the grid the vision tower produced."""
    from tvau.data.clips import pool_masks as pool_np

    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    t, h, w = grid_thw
    pooled = pool_np(m, h, w, temporal_patch)
    if pooled.shape[0] != t:
        raise ValueError(f"{m.shape[0]} mask frames do not give {t} temporal patches")
    return torch.from_numpy(pooled)


def ahd_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Stage-1 loss: 2-class cross-entropy per patch, mean over patches. logits (T', 2, H', W'),
    target (T', H', W') bool (1 = anomalous)."""
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in grid")
    return F.cross_entropy(logits.float(), target.long().to(logits.device))  # N = T', C = 2
