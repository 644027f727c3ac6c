"""DeepSpeed training on the tiny backbone: each stage changes only what it trains, the backbone
stays bit-identical and gets no gradient, a killed run resumes to the same adapters, and the
trained-model directory round-trips."""

from __future__ import annotations

import json

import pytest
import torch

from tvau.model.trained import TrainedModelError, load_trained, read_card, save_trained
from tvau.model.tvau import TVAU
from tvau.train import run_stage
from tvau.train.loop import schedule


def _groups(model: TVAU) -> dict[str, dict[str, torch.Tensor]]:
    sd = model.adapter_state_dict()
    return {g: {k: v for k, v in sd.items() if k.startswith(g + ".")} for g in ("ahd", "rae", "lora")}


def _backbone(model: TVAU) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.backbone.named_parameters() if "lora_" not in n}


def _changed(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_stage1_trains_ahd_only_and_leaves_the_backbone_bit_identical(params, train_set, tmp_path):
    model = TVAU.from_params(params)
    before, bb = _groups(model), _backbone(model)
    out = run_stage(params, "ahd", train_set, tmp_path / "ahd", checkpoint_dir=tmp_path / "ck", progress=False,
                    model=model)
    after = _groups(load_trained(out, params))
    assert _changed(before["ahd"], after["ahd"])
    assert not _changed(before["rae"], after["rae"]) and not _changed(before["lora"], after["lora"])
    assert all(torch.equal(bb[n], p) for n, p in model.backbone.named_parameters() if "lora_" not in n)
    assert all(p.grad is None for n, p in model.backbone.named_parameters() if "lora_" not in n)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4] and all(e["phase"] == "ahd" for e in log)
    assert "seconds" not in (out / "train.json").read_text()  # DVC-tracked: no timings


def test_stage2_trains_rae_and_lora_only(params, train_set, trained):
    stage1 = _groups(load_trained(trained.parent / "ahd", params))
    model = TVAU.from_params(params)
    bb = _backbone(model)
    out = run_stage(params, "rae", train_set, trained.parent / "tvau2", init=trained.parent / "ahd",
                    checkpoint_dir=trained.parent / "ck3", progress=False, model=model)
    stage2 = _groups(load_trained(out, params))
    assert not _changed(stage1["ahd"], stage2["ahd"])
    assert _changed(stage1["rae"], stage2["rae"]) and _changed(stage1["lora"], stage2["lora"])
    assert all(torch.equal(bb[n], p) for n, p in model.backbone.named_parameters() if "lora_" not in n)
    phases = [json.loads(line)["phase"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert phases == sorted(phases)  # curriculum: every phase-A step before any phase-B step
    # the session fixture ran the same stage with the same inputs: byte-identical adapters (DVC)
    assert (out / "adapters.safetensors").read_bytes() == (trained / "adapters.safetensors").read_bytes()


def test_yes_no_warm_up_comes_first_and_asks_only_the_decision(params, train_set, trained):
    """train.rae_epochs_q > 0: phase Q (each phase-B clip's first question, answered "Yes." or "No.")
    runs before the curriculum, and its answers are exactly the first sentence of phase B's."""
    from tvau.model.chat import Q_ANOMALY
    from tvau.train.data import decision_samples, sft_samples

    b = sft_samples(train_set, "B")
    q = decision_samples(b)
    assert [s.key for s in q] == [s.key for s in b]
    assert all(s.turns == ((Q_ANOMALY, "Yes."),) if r.turns[0][1].startswith("Yes.") else
               s.turns == ((Q_ANOMALY, "No."),) for s, r in zip(q, b))
    assert {s.turns[0][1] for s in q} == {"Yes.", "No."}  # the tiny set has both kinds of clip
    warm = params.model_copy(update={"train": params.train.model_copy(update={"rae_epochs_q": 1})})
    out = run_stage(warm, "rae", train_set, trained.parent / "tvau_q", init=trained.parent / "ahd",
                    checkpoint_dir=trained.parent / "ck_q", progress=False)
    phases = [json.loads(line)["phase"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    order = [("Q", "A", "B").index(p) for p in phases]
    assert order[0] == 0 and order == sorted(order)


def test_clips_encoded_in_groups_train_as_one_clip_at_a_time(params, train_set, trained, tmp_path):
    """train.encode_batch groups clips into one vision call: the adapters are those of one clip per call
    (up to float rounding of the batched vision pass)."""
    one = params.model_copy(update={"train": params.train.model_copy(update={"encode_batch": 1})})
    out = run_stage(one, "ahd", train_set, tmp_path / "ahd1", checkpoint_dir=tmp_path / "ck1", progress=False)
    grouped, single = _groups(load_trained(trained.parent / "ahd", params)), _groups(load_trained(out, one))
    assert params.train.encode_batch > 1
    for k, v in grouped["ahd"].items():
        torch.testing.assert_close(v, single["ahd"][k], rtol=1e-4, atol=1e-5)


class Killed(Exception):
    pass


@pytest.mark.parametrize("stage", ["ahd", "rae"])
def test_a_killed_run_resumes_to_the_same_adapters(params, train_set, trained, tmp_path, stage):
    init = trained.parent / "ahd" if stage == "rae" else None
    whole = run_stage(params, stage, train_set, tmp_path / "whole", init=init, checkpoint_dir=tmp_path / "ckw",
                      progress=False)

    def kill_at_3(step, metrics):  # after step 3: the last checkpoint is step 2
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        run_stage(params, stage, train_set, tmp_path / "resumed", init=init, checkpoint_dir=tmp_path / "ckr",
                  on_log=kill_at_3, progress=False)
    assert not (tmp_path / "resumed").exists()  # nothing half-written
    steps = []
    run_stage(params, stage, train_set, tmp_path / "resumed", init=init, checkpoint_dir=tmp_path / "ckr",
              on_log=lambda s, m: steps.append(s), progress=False)
    assert steps == [3, 4]  # resumed after the step-2 checkpoint
    for name in ("adapters.safetensors", "train_log.jsonl"):
        assert (tmp_path / "resumed" / name).read_bytes() == (whole / name).read_bytes(), name


def test_a_checkpoint_of_other_inputs_is_not_resumed(params, train_set, tmp_path):
    run_stage(params, "ahd", train_set, tmp_path / "a", checkpoint_dir=tmp_path / "ck", progress=False)
    other = params.model_copy(update={"train": params.train.model_copy(update={"seed": 1})})
    steps = []
    run_stage(other, "ahd", train_set, tmp_path / "b", checkpoint_dir=tmp_path / "ck",
              on_log=lambda s, m: steps.append(s), progress=False)
    assert steps == [1, 2, 3, 4]


def test_fingerprint_follows_a_local_backbones_weights(params, train_set, tmp_path):
    """A local backbone directory keeps its path when the pretraining stage rewrites it; a checkpoint
    trained on the old weights must not be resumed on the new ones."""
    import shutil

    from tvau.model.tiny import ensure_tiny
    from tvau.train.loop import fingerprint

    bb = tmp_path / "backbone"
    shutil.copytree(ensure_tiny(params.model.cache_dir, params.model.tiny_seed), bb)
    local = params.model_copy(update={"model": params.model.model_copy(update={"backbone": str(bb)})})
    before = fingerprint(local, "ahd", train_set, None, 1)
    assert fingerprint(local, "ahd", train_set, None, 1) == before
    weights = bb / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")  # other bytes, same path
    assert fingerprint(local, "ahd", train_set, None, 1) != before


def test_schedule_is_seeded_and_follows_the_curriculum():
    a = schedule({"A": 5, "B": 3}, {"A": 1, "B": 2}, seed=0, stage_id=2, batch=2)
    b = schedule({"A": 5, "B": 3}, {"A": 1, "B": 2}, seed=0, stage_id=2, batch=2)
    assert a == b and len(a) == (5 + 6) // 2
    flat = [i for step in a for i in step]
    assert [i.phase for i in flat] == ["A"] * 5 + ["B"] * 5  # the last odd item is dropped
    assert sorted(i.index for i in flat if i.phase == "A") == [0, 1, 2, 3, 4]
    assert schedule({"A": 5, "B": 3}, {"A": 1, "B": 2}, seed=1, stage_id=2, batch=2) != a
    assert len(schedule({"x": 3}, {"x": 1}, 0, 1, batch=2, max_steps=7)) == 7
    # a warm-up phase in front runs first, in full
    q = schedule({"Q": 3, "A": 5, "B": 3}, {"Q": 2, "A": 1, "B": 2}, seed=0, stage_id=2, batch=2)
    flat = [i.phase for step in q for i in step]
    assert flat[:6] == ["Q"] * 6 and "Q" not in flat[6:]


def test_trained_directory_round_trip_and_errors(params, tmp_path):
    model = TVAU.from_params(params)
    with torch.no_grad():
        for p in model.ahd.parameters():
            p.add_(0.5)
    out = save_trained(model, tmp_path / "m", params)
    card = read_card(out)
    assert card["format"] == "tvau-model/1" and card["backbone"] == "embedded:tiny"
    assert card["backbone_sha256"] is None and card["clip"]["height"] == 56 and card["seed"] == 0
    loaded = load_trained(out, params)
    sd0, sd1 = model.adapter_state_dict(), loaded.adapter_state_dict()
    assert sd0.keys() == sd1.keys() and all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    assert loaded.stage == 0 and not loaded.training
    with pytest.raises(TrainedModelError, match="no such trained-model directory"):
        load_trained(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text("{not json")
    with pytest.raises(TrainedModelError, match="bad/model.json: not valid JSON"):
        load_trained(tmp_path / "bad")
