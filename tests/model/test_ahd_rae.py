"""AHD and RAE against independent computations (scikit-learn cosine, hand-worked masks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from tvau.model.ahd import AHD, ahd_loss, heatmap_from_logits, pool_masks
from tvau.model.rae import RAE


def _feats(n, grid=(3, 4, 5), c=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*grid, c, generator=g) for _ in range(n)]


def test_ahd_is_scaled_cosine_fused_by_softmax_weights():
    torch.manual_seed(0)
    ahd = AHD(in_dim=8, text_dim=16, num_layers=3, hidden=32)
    with torch.no_grad():
        ahd.theta.copy_(torch.tensor([0.3, -1.0, 2.0]))
    feats, anchors = _feats(3), torch.randn(2, 16)
    out = ahd(feats, anchors).detach()
    assert out.shape == (3, 2, 4, 5)
    w = np.exp([0.3, -1.0, 2.0]) / np.exp([0.3, -1.0, 2.0]).sum()
    ref = 0
    for i, f in enumerate(feats):
        e = ahd.mlps[i](f).detach().reshape(-1, 16).numpy()
        cos = cosine_similarity(e, anchors.numpy())  # (positions, 2)
        ref = ref + w[i] * 100 * cos.reshape(3, 4, 5, 2).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-4)
    assert out.abs().max() <= 100 + 1e-4


def test_heatmap_in_unit_interval_and_channels_sum_to_one():
    logits = torch.randn(4, 2, 5, 6) * 50
    h = heatmap_from_logits(logits)
    assert h.shape == (4, 5, 6) and h.min() >= 0 and h.max() <= 1
    probs = torch.softmax(logits, 1)
    torch.testing.assert_close(probs.sum(1), torch.ones(4, 5, 6))
    torch.testing.assert_close(h, probs[:, 1])


def test_pool_masks_or_over_frame_pairs_then_nearest():
    m = np.zeros((3, 4, 4), bool)  # odd T: the last frame is repeated to make a pair
    m[0, 0, 0] = True  # frame 0 top-left pixel -> patch (0, 0, 0)
    m[2, 3, 3] = True  # frame 2 bottom-right -> temporal patch 1
    pooled = pool_masks(m, (2, 2, 2))
    expected = np.zeros((2, 2, 2), bool)
    # nearest 4 -> 2 samples source rows/cols 0 and 2
    expected[0, 0, 0] = True
    assert (pooled.numpy() == expected).all()
    m2 = np.zeros((2, 4, 4), bool)
    m2[1, 2:, 2:] = True
    assert pool_masks(m2, (1, 2, 2)).numpy().tolist() == [[[False, False], [False, True]]]
    with pytest.raises(ValueError, match="temporal patches"):
        pool_masks(m2, (3, 2, 2))


def test_ahd_loss_is_per_patch_cross_entropy():
    logits = torch.randn(2, 2, 3, 3)
    target = torch.rand(2, 3, 3) > 0.5
    lp = torch.log_softmax(logits, 1).numpy()
    t = target.numpy().astype(int)
    ref = -np.mean(np.take_along_axis(lp, t[:, None], 1))
    assert abs(ahd_loss(logits, target).item() - ref) < 1e-6
    with pytest.raises(ValueError, match="grid"):
        ahd_loss(logits, target[:, :2])


def test_rae_token_layout_and_locality():
    torch.manual_seed(0)
    rae = RAE(text_dim=16, hidden=32)
    logits = torch.randn(5, 2, 9, 9)
    tok = rae(logits)
    assert rae.tokens_per_step == 20 and tok.shape == (4 * 20, 16) and rae.num_tokens(5) == 80
    steps = tok.view(4, 20, 16)
    for s in range(4):  # the 10 base tokens open every step, identical across steps
        torch.testing.assert_close(steps[s, :10], rae.base)
    # A change in the top-left corner of the last frame reaches the top-left region token of the last
    # step, but not its bottom-right region token (the 7x7 receptive field cannot reach cell (2, 2)).
    bumped = logits.clone()
    bumped[4, 1, 0, 0] += 20
    s2 = rae(bumped).view(4, 20, 16)
    torch.testing.assert_close(s2[:3], steps[:3])
    assert not torch.allclose(s2[3, 10], steps[3, 10])  # region 0 = top-left
    torch.testing.assert_close(s2[3, 18], steps[3, 18])  # region 8 = bottom-right
    assert not torch.allclose(s2[3, 19], steps[3, 19])  # global token sees everything


def test_rae_static_heatmap_gives_identical_steps():
    rae = RAE(text_dim=16, hidden=32)
    logits = torch.randn(1, 2, 6, 6).expand(4, -1, -1, -1)  # no motion: X[t] = 0
    steps = rae(logits).view(3, 20, 16)
    torch.testing.assert_close(steps[0], steps[1])
    torch.testing.assert_close(steps[1], steps[2])
    assert rae(torch.randn(1, 2, 6, 6)).shape == (0, 16)  # one temporal patch: no motion, no tokens


def test_rae_probs_level_input_carries_the_change_and_the_level():
    torch.manual_seed(0)
    logits = torch.randn(4, 2, 5, 5) * 3
    p = torch.softmax(logits, dim=1)[:, 1]  # abnormal probability, computed independently
    x = RAE(text_dim=16, hidden=32, input_kind="probs_level").motion(logits)
    assert x.shape == (3, 2, 5, 5)
    torch.testing.assert_close(x[:, 0], p[1:] - p[:-1])
    torch.testing.assert_close(x[:, 1], p[1:])
    # A strong anomaly that stays put: the paper's cue is all zeros, ours keeps its level and place.
    static = torch.zeros(3, 2, 5, 5)
    static[:, 0] = 10.0  # normal everywhere ...
    static[:, :, 2, 2] = torch.tensor([0.0, 10.0])  # ... but the middle patch
    assert RAE(16, hidden=32, input_kind="probs").motion(static).abs().max() == 0
    lv = RAE(16, hidden=32, input_kind="probs_level").motion(static)
    assert lv[:, 0].abs().max() == 0 and lv[:, 1, 2, 2].min() > 0.99 and lv[:, 1, 0, 0].max() < 0.01
    with pytest.raises(ValueError, match="rae_input"):
        RAE(16, input_kind="level")
