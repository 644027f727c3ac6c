"""The backbone adapter: tap mapping, window/merge un-permutation, anchors, the LM call, generate()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.vision_utils import get_vision_window_index

from tvau.model.backbone import load_backbone, map_taps, window_order_to_spatial
from tvau.model.prompts import prompt_sentences


def test_map_taps():
    assert map_taps((0, 7, 15, 23, 31), 32, 32) == [0, 7, 15, 23, 31]
    assert map_taps((0, 7, 15, 23, 31), 32, 8) == [0, 1, 3, 5, 7]
    assert map_taps((0, 7, 15, 31), 32, 4) == [0, 1, 3]
    assert map_taps((0, 7, 15, 23, 31), 32, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="outside"):
        map_taps((32,), 32, 8)


@pytest.mark.parametrize("grid", [(2, 8, 8), (3, 6, 10), (1, 14, 6)])
def test_window_unpermutation_inverts_the_towers_orderings(grid):
    t, h, w = grid
    # Raster features that name their own coordinates.
    tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    raster = torch.stack([tt, hh, ww], -1).float()  # (t, h, w, 3)
    # Processor order: merge units (2x2) contiguous, units in raster order.
    seq = raster.view(t, h // 2, 2, w // 2, 2, 3).permute(0, 1, 3, 2, 4, 5).reshape(-1, 3)
    # The tower's window permutation (window 56 px = 2x2 units, with padding for odd unit grids).
    widx, _ = get_vision_window_index(torch.tensor([grid]), spatial_merge_size=2, window_size=56, patch_size=14)
    windowed = seq.view(-1, 4, 3)[widx].reshape(-1, 3)
    assert not torch.equal(windowed, seq)  # the permutation is not trivial here
    assert torch.equal(window_order_to_spatial(windowed, widx, grid, 2), raster)


def _identity_like(bb):
    """Make every vision block the identity (zero attention and MLP outputs) and the patch embedding
    the mean of each patch's normalised pixels in channel 0: taps then show the image itself."""
    with torch.no_grad():
        for blk in bb.visual.blocks:
            for lin in (blk.attn.proj, blk.mlp.down_proj):
                lin.weight.zero_()
                lin.bias.zero_()
        w = bb.visual.patch_embed.proj.weight
        w.zero_()
        w[0] = 1.0 / w[0].numel()


@pytest.mark.parametrize("size,corner", [((112, 112), "top-left"), ((84, 140), "bottom-right"),
                                         ((140, 84), "top-right")])
def test_bright_square_lands_in_its_corner(tiny_cfg, size, corner):
    bb = load_backbone(tiny_cfg)
    _identity_like(bb)
    h, w = size
    clip = np.zeros((6, h, w, 3), np.uint8)
    rows = slice(0, 28) if corner.startswith("top") else slice(h - 28, h)
    cols = slice(0, 28) if corner.endswith("left") else slice(w - 28, w)
    clip[:, rows, cols] = 255
    out = bb.encode_video(clip)
    expected = np.zeros((h // 14, w // 14), bool)
    expected[rows.start // 14: rows.stop // 14, cols.start // 14: cols.stop // 14] = True
    for m in out.taps:
        assert m.shape == (3, h // 14, w // 14, bb.vision_width)
        bright = (m[..., 0] > 0).numpy()
        assert (bright == expected[None]).all(), corner


@pytest.mark.parametrize("frames,size,grid", [(24, (112, 112), (12, 8, 8)), (23, (84, 140), (12, 6, 10)),
                                              (5, (100, 150), (3, 8, 10)), (1, (56, 56), (1, 4, 4))])
def test_encode_video_shapes(backbone, frames, size, grid):
    clip = np.random.default_rng(0).integers(0, 256, (frames, *size, 3), dtype=np.uint8)
    out = backbone.encode_video(clip)
    assert tuple(out.grid_thw[0].tolist()) == grid
    assert len(out.taps) == len(backbone.taps) == 5
    for m in out.taps:
        assert m.shape == (*grid, backbone.vision_width)
    assert out.video_embeds.shape == (grid[0] * grid[1] * grid[2] // 4, backbone.text_width)
    assert out.frame_size == size and out.num_frames == frames


def test_anchors_are_mean_of_sentence_means_and_cached(backbone):
    s = backbone.anchors()
    assert s.shape == (2, backbone.text_width)
    assert backbone.anchors() is s
    table = backbone.language_model.get_input_embeddings().weight.detach().numpy()
    for row, state in enumerate(("normal", "abnormal")):
        sents = prompt_sentences(state)
        assert len(sents) == 420
        ref = np.mean([table[backbone.tokenizer.encode(x, add_special_tokens=False)].mean(0) for x in sents], 0)
        np.testing.assert_allclose(s[row].numpy(), ref, rtol=1e-5, atol=1e-6)


def test_lm_with_inputs_embeds_matches_full_forward(backbone):
    clip = np.random.default_rng(1).integers(0, 256, (8, 56, 84, 3), dtype=np.uint8)
    vis = backbone.encode_video(clip)
    p = backbone.prompt([("Is there any anomaly in the video?", None)], vis.grid_thw)
    ours = backbone.logits(backbone.embed(p, vis.video_embeds), backbone.position_ids(p, vis.grid_thw))
    pixels, grid = backbone.preprocessor(clip)
    with torch.no_grad():
        ref = backbone.model(input_ids=p.input_ids, pixel_values_videos=pixels, video_grid_thw=grid,
                             mm_token_type_ids=p.mm_token_type_ids,
                             second_per_grid_ts=torch.tensor([2 / backbone.video_fps])).logits
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5)


def test_generate_returns_text(backbone):
    clip = np.random.default_rng(2).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    a = backbone.generate(clip, "Describe the environment.", max_new_tokens=6)
    assert isinstance(a, str) and a == backbone.generate(clip, "Describe the environment.", max_new_tokens=6)
    assert isinstance(backbone.generate(None, "Describe the environment.", max_new_tokens=4), str)


def test_greedy_decode_matches_full_recompute(backbone):
    """The KV-cache decoding and its M-RoPE rule give the same tokens as recomputing every step."""
    clip = np.random.default_rng(3).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    vis = backbone.encode_video(clip)
    q = "What is its motion state?"
    p = backbone.prompt([(q, None)], vis.grid_thw)
    emb, pos = backbone.embed(p, vis.video_embeds), backbone.position_ids(p, vis.grid_thw)
    fast = backbone.greedy_decode(emb, pos, 5)
    toks = []
    with torch.no_grad():
        for _ in range(5):
            nxt = int(backbone.logits(emb, pos)[0, -1].argmax())
            if nxt == backbone.table.im_end:
                break
            toks.append(nxt)
            e = backbone.language_model.get_input_embeddings()(torch.tensor([[nxt]]))
            emb = torch.cat([emb, e], 1)
            pos = torch.cat([pos, torch.full((3, 1, 1), int(pos.max()) + 1)], 2)
    assert fast == backbone.tokenizer.decode(toks, skip_special_tokens=True)


def test_bad_backbone_source_is_a_clear_error(tmp_path):
    from tvau.model.config import ModelConfig

    with pytest.raises(FileNotFoundError, match="neither"):
        load_backbone(ModelConfig(backbone=str(tmp_path / "missing" / "model")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_backbone(ModelConfig(backbone=str(tmp_path / "empty")))


@pytest.mark.parametrize("size", [(112, 168), (56, 84)])
def test_preprocessing_equals_transformers_qwen2vl_image_processor(backbone, size):
    """Our clip preprocessing (tvau/model/preprocess.py) against the reference implementation,
    transformers' PIL image processor for Qwen2-VL (no torchvision needed): a one-frame clip is
    padded to the temporal patch by repetition, exactly as the image processor broadcasts one
    image, so pixel values, patch order and grid must agree."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    pp = backbone.preprocessor
    frame = np.random.default_rng(3).integers(0, 256, (*size, 3), dtype=np.uint8)
    ref = Qwen2VLImageProcessorPil(
        image_mean=list(pp.mean), image_std=list(pp.std), min_pixels=pp.min_pixels, max_pixels=pp.max_pixels,
        patch_size=pp.patch_size, temporal_patch_size=pp.temporal_patch_size, merge_size=pp.merge_size,
    )(images=[Image.fromarray(frame)], return_tensors="np")
    ours, grid = pp(frame[None])
    assert grid.tolist() == ref["image_grid_thw"].tolist() == [[1, size[0] // 14, size[1] // 14]]
    np.testing.assert_allclose(ours.numpy(), ref["pixel_values"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(112, 112), (84, 140)])
def test_one_patch_square_off_the_merge_grid_lands_on_its_patch(tiny_cfg, size):
    """A 14-px square at patch (2, 5): the top-right patch of its 2x2 merge unit, so a transposition
    inside the unit (which moves it to (3, 4)) or a swapped unit order shows. The 28-px squares of
    test_bright_square_lands_in_its_corner fill whole units and cannot tell."""
    bb = load_backbone(tiny_cfg)
    _identity_like(bb)
    h, w = size
    clip = np.zeros((4, h, w, 3), np.uint8)
    clip[:, 28:42, 70:84] = 255  # rows of patch 2, columns of patch 5
    out = bb.encode_video(clip)
    expected = np.zeros((h // 14, w // 14), bool)
    expected[2, 5] = True
    for m in out.taps:
        bright = (m[..., 0] > 0).numpy()
        assert (bright == expected[None]).all(), np.argwhere(bright[0])
