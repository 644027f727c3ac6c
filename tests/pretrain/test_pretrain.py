"""The embedded backbone's pretraining: world footage without anomaly labels, generic
per-patch targets, a deterministic model directory that loads like Qwen2.5-VL-7B-Instruct."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.tiny import CLIP as CLIP_PARAMS
from tests.tiny import PRETRAIN, merged
from tvau.model.backbone import load_backbone
from tvau.model.config import ModelConfig
from tvau.model.tvau import TVAU
from tvau.pretrain.config import PretrainConfig
from tvau.pretrain.world import (
    ACTION_TARGETS,
    CATEGORY_TARGETS,
    IGNORE,
    WorldVideo,
    patch_targets,
    render_world_video,
)

# The tests' tiny pretraining (tests/tiny.py), with a two-layer language model (its layers are
# checked to be the LM's own) and two held-out videos.
TINY = PretrainConfig.model_validate(merged(PRETRAIN, {"language": {"layers": 2, "holdout_videos": 2}}))
CLIP = CLIP_PARAMS["height"]


def _with(cfg: PretrainConfig, **parts) -> PretrainConfig:
    """cfg with some keys of its parts replaced: _with(TINY, vision={"steps": 3})."""
    return PretrainConfig.model_validate({k: {**v, **parts.get(k, {})} for k, v in cfg.model_dump().items()})


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("TVAU_PRETRAIN_CHECKPOINTS", str(tmp_path / "checkpoints"))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from tvau.pretrain.vision import pretrain_vision

    out = tmp_path_factory.mktemp("pre") / "backbone"
    metrics = pretrain_vision(out, TINY, CLIP, CLIP, tiny_seed=0, progress=False)
    return out, metrics


def test_world_is_ordinary_activities_and_never_anomalous():
    from tvau.synth.scenarios import plan_activity_video
    from tvau.synth.scene import make_scene

    scene = make_scene(101, 128, np.random.default_rng(0))
    actors = plan_activity_video(np.random.default_rng(1), scene, 24, ["bicycle", "falling", "vehicle"], (1, 1))
    assert {"bicycle", "car"} <= {a.category for a in actors}  # the activities were placed
    assert not any(a.anomalous.any() for a in actors) and all(a.anomaly_kind is None for a in actors)
    # The targets are generic words: "loitering", "gathering", "crowd", "abandoned", "vehicle" and
    # "anomaly" (words that only exist because something is anomalous) are neither categories nor
    # actions, and a world video carries no anomaly field at all.
    words = set(CATEGORY_TARGETS) | set(ACTION_TARGETS)
    assert not words & {"loitering", "gathering", "crowd", "abandoned", "vehicle", "anomaly", "abnormal", "normal"}
    assert set(WorldVideo.__dataclass_fields__) == {"frames", "ids", "category", "action", "velocity", "appearance",
                                                    "dialogue"}


def test_world_video_is_a_pure_function_of_its_stream_and_index():
    a, b = render_world_video(TINY.world, 0, 3), render_world_video(TINY.world, 0, 3)
    c = render_world_video(TINY.world, 1, 3)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.action, b.action)
    assert not np.array_equal(a.frames, c.frames)


def test_patch_targets_follow_the_object_covering_the_patch():
    # Two objects on a 2-frame, 28x28 clip (2x2 patches): id 1 (a person walking right) fills the
    # top-left patch, id 2 (a car) covers 30 of the 392 pixels of the bottom-right patch (7.7%).
    ids = np.zeros((2, 28, 28), np.uint8)
    ids[:, :14, :14] = 1
    ids[0, 14:17, 14:24] = 2
    video = WorldVideo(
        frames=np.zeros((2, 28, 28, 3), np.uint8), ids=ids,
        category=np.array([0, CATEGORY_TARGETS.index("person"), CATEGORY_TARGETS.index("car")]),
        action=np.array([[0, ACTION_TARGETS.index("walking"), ACTION_TARGETS.index("driving")]] * 2),
        velocity=np.array([[[0, 0], [0.4, 0.0], [1.5, 0.0]]] * 2, np.float32),
        appearance=np.array([[IGNORE] * 4, [3, 7, 2, 1], [5, IGNORE, IGNORE, IGNORE]]))
    t = patch_targets(video, 0, ids, min_coverage=0.05)
    # Appearance: the person's red top, blue jeans (its words' indices) on its patch; the car's
    # colour on its patch; nothing on background.
    assert t["appearance"][0, 0, 0].tolist() == [3, 7, 2, 1] and t["appearance"][0, 1, 1].tolist()[0] == 5
    assert (t["appearance"][0, 0, 1] == IGNORE).all()
    assert t["category"].tolist() == [[[1, 0], [0, CATEGORY_TARGETS.index("car")]]]
    assert t["action"][0, 0, 0] == ACTION_TARGETS.index("walking") and t["action"][0, 1, 1] == ACTION_TARGETS.index("driving")
    np.testing.assert_allclose(t["velocity"][0, 0, 0], [0.4, 0.0])
    assert (t["velocity"][0, 0, 1] == 0).all()
    t = patch_targets(video, 0, ids, min_coverage=0.1)  # below 10% the car's patch is background
    assert t["category"][0, 1, 1] == 0 and t["action"][0, 1, 1] == 0


def test_pretrained_dir_loads_like_a_hub_checkpoint_and_is_deterministic(pretrained, tmp_path):
    from tvau.model.tiny import ensure_tiny
    from tvau.pretrain.vision import pretrain_vision

    out, metrics = pretrained
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "preprocessor_config.json"):
        assert (out / name).exists(), name
    assert 0 <= metrics["holdout_object_category_accuracy"] <= 1 and metrics["steps"] == 2
    assert 0 <= metrics["holdout_merged_upper_color_accuracy"] <= 1
    assert not any("second" in k or "time" in k for k in metrics)  # DVC metrics stay byte-stable
    bb = load_backbone(ModelConfig(backbone=str(out)))
    ensure_tiny(tmp_path / "models", 0)
    ref = load_backbone(ModelConfig(backbone="embedded:tiny", cache_dir=str(tmp_path / "models")))  # the starting point
    vis = "model.visual.blocks.0.attn.qkv.weight"
    lm = "model.language_model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(bb.model.get_parameter(vis), ref.model.get_parameter(vis))  # the tower trained
    assert bb.model.get_parameter(lm).shape[0] == 2 * 64  # the LM is the merger's width, still random
    assert bb.tokenizer.get_vocab() == ref.tokenizer.get_vocab() and bb.taps == ref.taps
    again = pretrain_vision(tmp_path / "again", TINY, CLIP, CLIP, tiny_seed=0, progress=False)
    assert again == metrics
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tvau_pretrain.json"):
        assert _sha(tmp_path / "again" / name) == _sha(out / name), name
    pretrain_vision(tmp_path / "other", _with(TINY, world={"seed": 1001}), CLIP, CLIP, progress=False)
    assert _sha(tmp_path / "other" / "model.safetensors") != _sha(out / "model.safetensors")


def test_swap_pretrained_for_a_7b_shaped_backbone_through_the_same_path(pretrained, tmp_path):
    """The pretrained directory and a directory of the 7B's own config (Qwen2_5_VLConfig with the
    7B's values, only depth and widths shrunk so it runs here) load through the same
    load_backbone/from_pretrained path, and TVAU runs unchanged on both."""
    from transformers import AutoConfig

    from tvau.model.arch import QWEN25VL_7B_PREPROCESSOR, qwen25vl_7b_config
    from tvau.model.random_backbone import random_weights
    from tvau.model.tiny import build_tiny_tokenizer, token_ids

    out, _ = pretrained
    tok = build_tiny_tokenizer()
    d = qwen25vl_7b_config(token_ids(tok)).to_dict()
    d["vision_config"].update({"depth": 4, "hidden_size": 48, "intermediate_size": 96, "num_heads": 2,
                               "out_hidden_size": 64, "fullatt_block_indexes": [1, 3]})
    d["text_config"].update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "num_key_value_heads": 2, "layer_types": None})
    d["text_config"]["rope_parameters"]["mrope_section"] = [2, 3, 3]
    hf = AutoConfig.for_model(**d)
    seven = tmp_path / "qwen2.5-vl-7b-shaped"
    random_weights(hf, "cpu", torch.float32, seed=0).save_pretrained(seven)
    tok.save_pretrained(seven)
    (seven / "preprocessor_config.json").write_text(json.dumps(
        {**QWEN25VL_7B_PREPROCESSOR, "image_processor_type": "Qwen2VLImageProcessor"}))
    assert type(AutoConfig.from_pretrained(seven)) is type(AutoConfig.from_pretrained(out))

    clip = np.random.default_rng(0).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    heat = {}
    for d in (out, seven):
        cfg = ModelConfig(backbone=str(d))
        model = TVAU.from_config(cfg, seed=0)
        assert model.backbone.source == str(d)
        h = model.heatmap(clip)
        assert h.shape == (2, 4, 4) and 0 <= float(h.min()) <= float(h.max()) <= 1
        heat[d] = model.backbone
    assert heat[seven].taps == [0, 1, 2, 3] and heat[seven].model.config.vision_config.window_size == 112
    assert heat[out].vision_width != heat[seven].vision_width


def test_cli_writes_both_parts_and_refuses_the_global_seed(tmp_path):
    from tvau.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 1000, "pretrain": {"world": {"seed": 1000}}}))
    r = CliRunner().invoke(app, ["pretrain-backbone", "vision", "--out", str(tmp_path / "bb"), "--params", str(params)])
    assert r.exit_code == 2 and "pretrain.world.seed" in r.output and not (tmp_path / "bb").exists()
    # Sections other than the ones the pretraining reads are not its business (their stages check them).
    params.write_text(yaml.safe_dump({"seed": 0, "clip": {"height": CLIP, "width": CLIP}, "train": {"bogus": 1},
                                      "pretrain": _with(TINY, vision={"steps": 1}).model_dump()}))
    r = CliRunner().invoke(app, ["pretrain-backbone", "vision", "--out", str(tmp_path / "bb"), "--params", str(params),
                                 "--metrics", str(tmp_path / "m.json"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "bb" / "model.safetensors").exists()
    assert json.loads((tmp_path / "m.json").read_text())["stage"] == "pretrain_vision"
    r = CliRunner().invoke(app, ["pretrain-backbone", "language", "--vision", str(tmp_path / "bb"), "--out",
                                 str(tmp_path / "lm"), "--params", str(params), "--metrics", str(tmp_path / "l.json"),
                                 "--no-progress"])
    assert r.exit_code == 0, r.output
    fields = json.loads((tmp_path / "l.json").read_text())["lm_holdout_field_accuracy"]
    assert set(fields) <= {"category", "color", "clothing", "action", "from_region", "to_region"} and fields
    r = CliRunner().invoke(app, ["pretrain-backbone", "language", "--vision", str(tmp_path / "nothing"), "--out",
                                 str(tmp_path / "lm2"), "--params", str(params)])
    assert r.exit_code == 2 and "nothing" in r.output and not (tmp_path / "lm2").exists()
    params.write_text(yaml.safe_dump({"seed": 0, "clip": {"height": 50, "width": 50}}))
    r = CliRunner().invoke(app, ["pretrain-backbone", "vision", "--out", str(tmp_path / "bb2"), "--params", str(params)])
    assert r.exit_code == 2 and "multiple of 28" in r.output and not (tmp_path / "bb2").exists()


def test_a_stopped_run_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    """Vision pretraining killed after its first checkpoint and started again writes the bytes of an
    unbroken run (the pool, the sampler and the optimiser continue where they were), and the
    checkpoint is gone once the output is written."""
    from tvau.pretrain import vision

    cfg = _with(TINY, vision={"steps": 5, "checkpoint_every": 2, "fresh_videos": 3}, world={"render_workers": 0})
    calls, losses = [], vision._losses

    def stop_at_fourth(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return losses(*a, **k)

    monkeypatch.setattr(vision, "_losses", stop_at_fourth)
    with pytest.raises(KeyboardInterrupt):
        vision.pretrain_vision(tmp_path / "resumed", cfg, CLIP, CLIP, progress=False)
    saved = list((tmp_path / "checkpoints").glob("vision-*.pt"))
    assert len(saved) == 1 and not (tmp_path / "resumed").exists()
    monkeypatch.setattr(vision, "_losses", losses)
    resumed = vision.pretrain_vision(tmp_path / "resumed", cfg, CLIP, CLIP, progress=False)
    assert not saved[0].exists()
    whole = vision.pretrain_vision(tmp_path / "whole", cfg, CLIP, CLIP, progress=False)
    assert resumed == whole
    assert _sha(tmp_path / "resumed" / "model.safetensors") == _sha(tmp_path / "whole" / "model.safetensors")


def test_fresh_videos_replace_the_oldest_and_helpers_change_no_sample():
    """The pool swaps fresh videos in on a fixed schedule; rendering them in a helper process gives
    the same samples, byte for byte, as rendering them in this process."""
    from tvau.model.preprocess import VisionPreprocessor
    from tvau.model.tiny import tiny_preprocessor_config
    from tvau.pretrain.vision import CropPool

    pre = VisionPreprocessor.from_config(tiny_preprocessor_config())
    cfg = _with(TINY, vision={"pool_videos": 2, "fresh_videos": 3, "steps": 6, "crop": 0})
    draws = {}
    for workers in (0, 1):
        pool = CropPool(_with(cfg, world={"render_workers": workers}), CLIP, CLIP, pre)
        rng, out, swapped = np.random.default_rng(0), [], []
        try:
            for step in range(cfg.vision.steps):
                pool.advance(step)
                swapped.append(pool.swapped)
                out.append(pool.draw(rng))
            held = [v[1] for v in pool.videos]  # the frames each slot holds at the end
        finally:
            pool.close()
        draws[workers] = out
        # floor(3 * step / 6) fresh videos by each step; the third never comes (due at step 6).
        assert swapped == [0, 0, 1, 1, 2, 2]
    for (p0, g0, t0), (p1, g1, t1) in zip(draws[0], draws[1]):
        assert torch.equal(p0, p1) and torch.equal(g0, g1)
        assert all(torch.equal(t0[k], t1[k]) for k in t0)
    # Two swaps: the oldest slots (videos 0 and 1) now hold fresh videos 2 and 3 at the clip size.
    from tvau.pretrain.world import resize_clip

    for slot, index in ((0, 2), (1, 3)):
        v = render_world_video(cfg.world, 0, index)
        assert np.array_equal(held[slot], resize_clip(v.frames, v.ids, CLIP, CLIP)[0])
    assert not np.array_equal(held[0], held[1])


def test_world_dialogue_answers_from_what_the_camera_shows_and_never_says_anomaly():
    """The language pretraining's questions and answers: the listed objects are those in view, the
    yes/no answer follows the objects present, and no turn speaks of anomalies."""
    from tvau.construct.sentences import appearance
    from tvau.pretrain.language import Q_WHAT, world_dialogue
    from tvau.vocab import REGIONS_3X3

    def in_view_of(actors, ids):
        return [a for a in actors if (ids == a.oid).sum() >= 40 and a.category != "ball"]
    from tvau.synth.render import render_video
    from tvau.synth.scenarios import plan_activity_video
    from tvau.synth.scene import make_scene

    scene = make_scene(101, 128, np.random.default_rng(0))
    yes_no = []
    for k in range(12):
        actors = plan_activity_video(np.random.default_rng(k), scene, 24, ["bicycle", "vehicle"], (1, 1))
        _, ids = zip(*render_video(scene, actors, 24, np.random.default_rng(k), 0.0, 0.0))
        ids = np.stack(ids)
        turns = world_dialogue(actors, scene, ids, np.random.default_rng([k, 1]))
        described = [(q, a) for q, a in turns if q.startswith("Describe what is in the ")]
        # 3 turns per object alone in its region (described, colour, from/to), different regions
        assert turns[0][0] == Q_WHAT and len(turns) == 4 + 3 * len(described) and len(described) <= 3
        assert len({q for q, _ in described}) == len(described)
        for q, a in described:  # the object named by its region is the one described
            region = q.removeprefix("Describe what is in the ").rstrip(".")
            assert any(appearance(x.category, x.look["colors"], x.look.get("clothing", "")).lower() in a.lower()
                       for x in in_view_of(actors, ids)), (q, a)
            assert region in REGIONS_3X3
        assert not any(w in (q + a).lower() for q, a in turns for w in ("anomal", "abnormal", "normal"))
        in_view = [a for a in actors if (ids == a.oid).sum() >= 40 and a.category != "ball"]
        largest = max(in_view, key=lambda a: (ids == a.oid).sum())
        assert appearance(largest.category, largest.look["colors"], largest.look.get("clothing", "")) in turns[0][1]
        q, a = turns[1]
        if q.startswith("Is there"):
            cat = q.split()[3]
            assert a.startswith("Yes") == any(x.category == cat for x in in_view), (q, a)
        assert a.startswith(("Yes. ", "No. ")), a  # the decision first, as T-VAU's dialogues answer
        yes_no.append(a.split(".")[0])
    assert {"Yes", "No"} <= set(yes_no)  # both answers occur


def test_language_pretraining_trains_the_lm_and_leaves_the_tower(pretrained, tmp_path):
    """The language part keeps the vision part's tower and merger, byte for byte, and trains the
    language model (embeddings, blocks, head) of its own depth at the merger's width."""
    from safetensors.torch import load_file

    from tvau.pretrain.language import pretrain_language

    vision_dir, _ = pretrained
    cfg = _with(TINY, world={"render_workers": 0})
    m = pretrain_language(vision_dir, tmp_path / "lm", cfg, CLIP, CLIP, progress=False)
    assert 0 <= m["lm_holdout_yes_no_accuracy"] <= 1 and m["lm_steps"] == 2
    for name, (lo, hi) in m["lm_holdout_field_accuracy_ci"].items():
        assert lo <= m["lm_holdout_field_accuracy"][name] <= hi
    wa, wb = load_file(vision_dir / "model.safetensors"), load_file(tmp_path / "lm" / "model.safetensors")
    # Saved with the checkpoint's names: visual.* (tower and merger), model.* and lm_head.* (the LM).
    vision = [k for k in wa if k.startswith("visual.")]
    assert vision and all(torch.equal(wa[k], wb[k]) for k in vision)
    layers = {k.split(".")[2] for k in wb if k.startswith("model.layers.")}
    assert len(layers) == cfg.language.layers
    again = pretrain_language(vision_dir, tmp_path / "again", cfg, CLIP, CLIP, progress=False)
    assert again == m and _sha(tmp_path / "again" / "model.safetensors") == _sha(tmp_path / "lm" / "model.safetensors")


def test_generic_field_accuracy_reads_the_answers_and_counts_unstated_fields_wrong():
    from tvau.pretrain.language import _field_accuracy

    ref = "A person in a red shirt and blue jeans, running."
    answers = [
        {"video": 0, "question": "Describe what is in the left.", "reference": ref, "answer": ref},
        {"video": 1, "question": "Describe what is in the top.", "reference": ref,
         "answer": "A person in a red shirt and green jeans, walking."},
        {"video": 2, "question": "Describe what is in the top.", "reference": ref, "answer": "Yes. Yes. Yes."},
        {"video": 0, "question": "From where to where does it move?", "reference": "It moves from the left to the top.",
         "answer": "It moves from the left to the middle."},
    ]
    point, ci, constant = _field_accuracy(answers, seed=0)
    assert point["category"] == round(2 / 3, 4) and point["clothing"] == round(2 / 3, 4)
    assert point["color"] == round(1 / 3, 4) and point["action"] == round(1 / 3, 4)
    assert point["from_region"] == 1.0 and point["to_region"] == 0.0
    assert ci["color"][0] <= point["color"] <= ci["color"][1]
    assert constant["category"] == 1.0  # every reference is a person: "a person" to all scores 1

    # A second object described in video 0, a bicycle: every question counts, and the constant answer
    # ("person", 3 of 4) is what a model that never looks would score.
    answers.append({"video": 0, "question": "Describe what is in the right.", "reference": "A green bicycle, riding.",
                    "answer": "A person in a green shirt and blue jeans, walking."})
    point, _, constant = _field_accuracy(answers, seed=0)
    assert point["category"] == 0.5 and constant["category"] == 0.75
