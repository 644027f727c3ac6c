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
from tvau.train.loop import Trainer, schedule


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
    out = run_stage(params, "ahd", train_set, tmp_path / "ahd", checkpoint_dir=tmp_path / "ck", progress="off",
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
                    checkpoint_dir=trained.parent / "ck3", progress="off", model=model)
    stage2 = _groups(load_trained(out, params))
    assert not _changed(stage1["ahd"], stage2["ahd"])
    assert _changed(stage1["rae"], stage2["rae"]) and _changed(stage1["lora"], stage2["lora"])
    assert all(torch.equal(bb[n], p) for n, p in model.backbone.named_parameters() if "lora_" not in n)
    phases = [json.loads(line)["phase"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert phases == sorted(phases)  # curriculum: every phase-A step before any phase-B step
    # the session fixture ran the same stage with the same inputs: byte-identical adapters (DVC)
    assert (out / "adapters.safetensors").read_bytes() == (trained / "adapters.safetensors").read_bytes()


def test_yes_no_phase_is_balanced_trains_the_decision_token_alone_and_runs_first_or_last(params, train_set, trained):
    """train.rae_epochs_q > 0: phase Q (each phase-B clip's first question, answered "Yes." or "No.")
    has exactly the first sentence of phase B's answers, the minority answer repeated until both are
    equally many; it runs before the curriculum, after it, or shuffled into phase B (rae_q_mode); its
    loss is the decision token's cross-entropy alone."""
    from tvau.model.chat import Q_ANOMALY
    from tvau.train.data import balanced, decision_samples, sft_samples

    b = sft_samples(train_set, "B")
    q = decision_samples(b)
    assert all(s.first_token_only for s in q) and not any(s.first_token_only for s in b)
    assert [s.key for s in q[:len(b)]] == [s.key for s in b]
    assert all(s.turns == ((Q_ANOMALY, "Yes."),) if r.turns[0][1].startswith("Yes.") else
               s.turns == ((Q_ANOMALY, "No."),) for s, r in zip(q, b))
    # class-balanced: the minority answer's clips repeat until both answers are equally many
    for sub in (b, b[:-1]):  # the tiny set is 3 "Yes" and 3 "No"; without its last record, unequal
        q_sub, n_yes = decision_samples(sub), sum(r.turns[0][1].startswith("Yes.") for r in sub)
        answers = [s.turns[0][1] for s in q_sub]
        assert 0 < n_yes < len(sub)
        assert answers.count("Yes.") == answers.count("No.") == max(n_yes, len(sub) - n_yes)
        minority = "Yes." if n_yes < len(sub) - n_yes else "No."
        assert all(s.turns[0][1] == minority for s in q_sub[len(sub):])
    assert len(decision_samples(b[:-1])) == len(b[:-1]) + 1
    # train.rae_balance_b balances phase B's whole dialogues the same way
    full, minority = balanced(b[:-1]), "Yes" if n_yes < len(b) - 1 - n_yes else "No"
    first_of_minority = next(s for s in b[:-1] if s.turns[0][1].startswith(minority))
    assert full == b[:-1] + [first_of_minority]  # whole dialogues, the minority's first one repeated
    assert balanced(b) == b  # already balanced: unchanged
    warm = params.model_copy(update={"train": params.train.model_copy(update={"rae_epochs_q": 1})})
    out = run_stage(warm, "rae", train_set, trained.parent / "tvau_q", init=trained.parent / "ahd",
                    checkpoint_dir=trained.parent / "ck_q", progress="off")
    phases = [json.loads(line)["phase"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    order = [("Q", "A", "B").index(p) for p in phases]
    assert order[0] == 0 and order == sorted(order)
    def mode(m: str):  # every phase whole: no max_steps cut
        return warm.model_copy(update={"train": warm.train.model_copy(update={
            "rae_q_mode": m, "rae_epochs_q": 2, "rae": warm.train.rae.model_copy(update={"max_steps": 0})})})

    with_b = Trainer(mode("with_b"), "rae", train_set, trained.parent / "ahd", progress=False)
    assert list(with_b.samples) == ["A", "B"]  # Q's samples (2 passes = 2 copies per B pass of 1) join B's
    assert with_b.samples["B"] == b + q + q and sum(s.first_token_only for s in with_b.samples["B"]) == 2 * len(q)
    tr = Trainer(mode("last"), "rae", train_set, trained.parent / "ahd", progress=False)
    assert list(tr.samples) == ["A", "B", "Q"]
    assert [it.phase for step in tr.steps for it in step][-1] == "Q"
    # phase Q's loss is the decision token's cross-entropy alone; A's and B's cover every answer token
    item_q = next(it for step in tr.steps for it in step if it.phase == "Q")
    s_q = tr.samples["Q"][item_q.index]
    tr.model.eval()
    with torch.no_grad():
        got = tr.loss(item_q)
        feats = tr._features(s_q.video, s_q.start)
        prompt, embeds, pos = tr.model._lm_inputs(feats, list(s_q.turns))
        logits = tr.model.backbone.logits(embeds, pos)[0]
        first = int((prompt.labels[0] != -100).nonzero()[0])
        want = torch.nn.functional.cross_entropy(logits[first - 1:first].float(), prompt.labels[0, first:first + 1])
        assert torch.allclose(got, want, atol=1e-5)
        assert not torch.allclose(tr.model.dialogue_loss(feats, list(s_q.turns)), want, atol=1e-3)


def test_decision_threshold_is_fitted_on_the_training_clips_and_saved(params, train_set, trained):
    """train.rae_calibrate_decision: after stage 2 the yes/no threshold maximising the training clips'
    balanced accuracy is kept in the adapters; recomputed here from the saved model's own margins."""
    import numpy as np

    from tvau.train.data import ClipReader, sft_samples

    cal = params.model_copy(update={"train": params.train.model_copy(update={"rae_calibrate_decision": True})})
    out = run_stage(cal, "rae", train_set, trained.parent / "tvau_cal", init=trained.parent / "ahd",
                    checkpoint_dir=trained.parent / "ck_cal", progress="off")
    summary = json.loads((out / "train.json").read_text())["decision_calibration"]
    plain, model = load_trained(trained, params), load_trained(out, cal)
    assert plain.decision_offset is None
    assert model.decision_offset == pytest.approx(summary["offset"], abs=1e-6)
    # Calibration changes no weight: the same adapters as the uncalibrated run of the same inputs.
    assert all(torch.equal(a, b) for a, b in zip(plain.adapter_state_dict().values(),
                                                 model.adapter_state_dict().values()))
    truth = {}
    for s in sft_samples(train_set, "B"):
        truth.setdefault((s.video, s.start), s.turns[0][1].startswith("Yes"))
    reader = ClipReader(cal.train.footage, cal.clip)
    keys = sorted(truth)
    margins = model.decision_margins([reader(v, t) for v, t in keys]).numpy()
    y = np.array([truth[k] for k in keys])
    assert summary["clips"] == len(keys) and summary["yes"] == int(y.sum())

    def bacc(threshold):
        yes = margins > threshold
        return ((yes & y).sum() / y.sum() + (~yes & ~y).sum() / (~y).sum()) / 2

    assert bacc(model.decision_offset) == pytest.approx(summary["train_balanced_accuracy"], abs=1e-9)
    assert bacc(model.decision_offset) >= bacc(0.0)


def test_clips_encoded_in_groups_train_as_one_clip_at_a_time(params, train_set, trained, tmp_path):
    """train.encode_batch groups clips into one vision call: the adapters are those of one clip per call
    (up to float rounding of the batched vision pass)."""
    one = params.model_copy(update={"train": params.train.model_copy(update={"encode_batch": 1})})
    out = run_stage(one, "ahd", train_set, tmp_path / "ahd1", checkpoint_dir=tmp_path / "ck1", progress="off")
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
                      progress="off")

    def kill_at_3(step, metrics):  # after step 3: the last checkpoint is step 2
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        run_stage(params, stage, train_set, tmp_path / "resumed", init=init, checkpoint_dir=tmp_path / "ckr",
                  on_log=kill_at_3, progress="off")
    assert not (tmp_path / "resumed").exists()  # nothing half-written
    steps = []
    run_stage(params, stage, train_set, tmp_path / "resumed", init=init, checkpoint_dir=tmp_path / "ckr",
              on_log=lambda s, m: steps.append(s), progress="off")
    assert steps == [3, 4]  # resumed after the step-2 checkpoint
    for name in ("adapters.safetensors", "train_log.jsonl"):
        assert (tmp_path / "resumed" / name).read_bytes() == (whole / name).read_bytes(), name


def test_a_checkpoint_of_other_inputs_is_not_resumed(params, train_set, tmp_path):
    run_stage(params, "ahd", train_set, tmp_path / "a", checkpoint_dir=tmp_path / "ck", progress="off")
    other = params.model_copy(update={"train": params.train.model_copy(update={"seed": 1})})
    steps = []
    run_stage(other, "ahd", train_set, tmp_path / "b", checkpoint_dir=tmp_path / "ck",
              on_log=lambda s, m: steps.append(s), progress="off")
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


def test_stage2_checks_its_stage1_model_against_params_before_training(params, trained, tmp_path):
    """Stage 2 refuses a stage-1 directory whose model.json or whose adapters' own header was made for
    other model parameters (each error names the file), and accepts a model.json written before a model
    key was added, when params keep the value its backbone's profile gives."""
    import shutil

    from tvau.model.tvau import read_adapter_meta
    from tvau.train.data import TrainingDataError
    from tvau.train.loop import check_init

    ahd = trained.parent / "ahd"
    check_init(params, "rae", ahd)
    assert params.model.rae_input == "probs_level"  # the embedded profile's, so a card without the key reads as it
    other = params.model_copy(update={"model": params.model.model_copy(update={"rae_input": "probs"})})
    with pytest.raises(TrainingDataError, match="model.json"):
        check_init(other, "rae", ahd)
    # model.json edited to the new parameters, the weights still those of the old ones
    edited = tmp_path / "edited"
    shutil.copytree(ahd, edited)
    card = json.loads((edited / "model.json").read_text())
    card["model"]["rae_input"] = "probs"
    (edited / "model.json").write_text(json.dumps(card))
    assert read_adapter_meta(edited / "adapters.safetensors")["rae_input"] == "probs_level"
    with pytest.raises(TrainedModelError, match=r"adapters\.safetensors: made for other model parameters.*rae_input"):
        check_init(other, "rae", edited)
    (edited / "adapters.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(TrainedModelError, match=r"adapters\.safetensors: not a readable"):
        check_init(other, "rae", edited)
    # a card without a backbone-specific key reads as its backbone's profile value
    older = tmp_path / "older"
    shutil.copytree(ahd, older)
    card = json.loads((older / "model.json").read_text())
    del card["model"]["rae_input"]
    (older / "model.json").write_text(json.dumps(card))
    check_init(params, "rae", older)
