"""A tiny footage tree and training set, and tiny parameters (tests/tiny.py), shared by the training
and the model-evaluation tests (tests/evaluate/conftest.py imports these fixtures). The training set follows the layout of `tvau construct build` (clips.parquet,
AHD shards of pooled masks, SFT phase A/B jsonl) and is cut from the footage's real masks with the
project's own pooling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.tiny import CLIP, MODEL, SYNTH
from tvau.config import Params


def tiny_params(cache_dir: str, footage: Path, **train) -> Params:
    """The code defaults are params.yaml's; these tests pin a small, single-process run of the paper's
    curriculum (no yes/no phase, no calibration), one dialogue clip per video and unsmoothed scores."""
    raw = {
        "seed": 0,
        "model": {**MODEL, "cache_dir": cache_dir},
        "clip": {**CLIP, "mask_pooling": "nearest"},
        "train": {"grad_accum": 2, "checkpoint_every": 2, "log_every": 1, "footage": str(footage), "ranks": 1,
                  "rae_epochs_q": 0, "rae_balance_b": False, "rae_calibrate_decision": False,
                  "ahd": {"lr": 0.01, "epochs": 1, "max_steps": 4},
                  "rae": {"lr": 0.01, "epochs": 1, "max_steps": 4}, "rae_epochs_b": 1, **train},
        "evaluate": {"bootstrap": 50, "max_new_tokens": 8, "overlays": 1, "dialogue_clips_per_video": 1,
                     "holdout_videos": 40},
        "metrics": {"min_region_area": 4, "temporal_sigma": 0.0, "regions": "components"},
    }
    return Params.model_validate(raw)


@pytest.fixture(scope="session")
def footage(tmp_path_factory) -> Path:
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    out = tmp_path_factory.mktemp("footage") / "synth"
    cfg = SynthConfig.model_validate(SYNTH)
    generate(out, cfg, 5, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> str:
    from tvau.model.tiny import ensure_tiny

    cache = tmp_path_factory.mktemp("models")
    ensure_tiny(cache, 0)
    return str(cache)


@pytest.fixture(scope="session")
def train_set(footage, tmp_path_factory) -> Path:
    """Every clip of every video in the train split (and one SFT record per clip per phase)."""
    from tvau.construct.dialogue import phase_a, phase_b_anomalous, phase_b_normal
    from tvau.data import open_dataset
    from tvau.data.clips import clip_starts, load_clip_masks, pool_masks
    from tvau.storage import write_jsonl

    out = tmp_path_factory.mktemp("train") / "train"
    (out / "ahd").mkdir(parents=True)
    (out / "sft").mkdir()
    rows, masks, sft_a, sft_b = [], [], [], []
    for rec in open_dataset(footage, "ubnormal"):
        if rec.split != "train":
            continue
        for start in clip_starts(rec.num_frames, CLIP["num_frames"], CLIP["stride"]):
            m = load_clip_masks(rec, start, CLIP["num_frames"], CLIP["height"], CLIP["width"])
            masks.append(pool_masks(m, 4, 4).astype(np.uint8))
            cid = len(rows)
            rows.append({"clip_id": cid, "video": rec.name, "split": "train", "start": start,
                         "shard": "ahd/train-000.npz", "row": cid})
            anomalous = bool(rec.frame_labels[start:start + CLIP["num_frames"]].any())
            obj = {"category": "person", "colors": {}, "clothing": "", "regions": ["left", "middle"],
                   "motion_state": "walking"}
            base = {"video": rec.name, "split": "train", "source": str(rec.source), "start": start,
                    "stop": start + CLIP["num_frames"], "anomalous": anomalous}
            sft_a.append(base | {"id": f"A-{cid}", "phase": "A", "messages": phase_a([obj])})
            if anomalous:
                msgs, answers = phase_b_anomalous({"described_category": "bicycle", "described_colors": {},
                                                   "described_clothing": "", "described_action": "riding",
                                                   "regions": ["left", "right"], "motion_state": "fast"}, [obj])
            else:
                msgs, answers = phase_b_normal([obj])
            sft_b.append(base | {"id": f"B-{cid}", "phase": "B", "messages": msgs, "answers": answers})
    np.savez_compressed(out / "ahd" / "train-000.npz", masks=np.stack(masks),
                        frame_labels=np.zeros((len(rows), CLIP["num_frames"]), np.uint8),
                        clip_id=np.arange(len(rows)))
    pd.DataFrame(rows).to_parquet(out / "clips.parquet", index=False)
    write_jsonl(out / "sft" / "phase_a_train.jsonl", sft_a)
    write_jsonl(out / "sft" / "phase_b_train.jsonl", sft_b)
    (out / "manifest.json").write_text(json.dumps({"clips": len(rows)}))
    return out


@pytest.fixture(scope="session")
def params(model_cache, footage) -> Params:
    return tiny_params(model_cache, footage)


@pytest.fixture(scope="session")
def trained(params, train_set, tmp_path_factory) -> Path:
    """A stage-2 trained-model directory (both stages, a few steps each)."""
    from tvau.train import run_stage

    root = tmp_path_factory.mktemp("trained")
    ahd = run_stage(params, "ahd", train_set, root / "ahd", checkpoint_dir=root / "ck1", progress="off")
    return run_stage(params, "rae", train_set, root / "tvau", init=ahd, checkpoint_dir=root / "ck2", progress="off")
