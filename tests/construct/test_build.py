"""Build stage: AHD shards (pooled masks) and SFT dialogues, split by video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tvau import vocab
from tvau.construct import dialogue
from tvau.construct.build import build_training_sets, write_manifest
from tvau.data.config import ClipConfig
from tvau.storage import read_jsonl, sha256_file

CLIP = ClipConfig(num_frames=24, stride=12, height=112, width=112, mask_pooling="nearest")  # grid 8x8


@pytest.fixture(scope="module")
def built(stages, records, cfg, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("train")
    tables = {k: stages[k] for k in ("videos", "timelines", "track_points", "targets")}
    stats = build_training_sets(records, tables, CLIP, cfg, out, progress=False)
    write_manifest(out, stats)
    return out, stats


def test_pooled_masks_match_an_independent_computation(built, records):
    out, _ = built
    clips = pd.read_parquet(out / "clips.parquet")
    # the anomalous clip whose pooled mask is largest (nearest pooling can miss tiny targets)
    sums = {r.clip_id: np.load(out / r.shard)["masks"][r.row].sum() for r in clips[clips.anomalous_frames > 0].itertuples()}
    c = clips.set_index("clip_id").loc[max(sums, key=sums.get)]
    shard = np.load(out / c.shard)
    got = shard["masks"][c.row]
    assert shard["clip_id"][c.row] == c.name
    assert got.shape == (12, 8, 8)
    masks = np.stack(list(records[c.video].iter_anomaly_masks(int(c.start), int(c.stop))))
    h, w = masks.shape[1:]
    for t in range(12):
        pair = masks[2 * t] | masks[2 * t + 1]
        for i in range(8):
            for j in range(8):  # nearest: source pixel floor(i * H / 8)
                assert got[t, i, j] == pair[(i * h) // 8, (j * w) // 8]
    assert got.any()
    labels = shard["frame_labels"][c.row]
    assert labels.tolist() == records[c.video].frame_labels[c.start : c.stop].tolist()


def test_any_pooling_gives_every_anomalous_pair_a_target(stages, records, cfg, tmp_path):
    """clip.mask_pooling "any": a patch is anomalous when any pixel of its two frames is, so no
    anomalous frame pair is left without a target (nearest sampling can drop small objects)."""
    tables = {k: stages[k] for k in ("videos", "timelines", "track_points", "targets")}
    build_training_sets(records, tables, CLIP.model_copy(update={"mask_pooling": "any"}), cfg, tmp_path, progress=False)
    clips = pd.read_parquet(tmp_path / "clips.parquet")
    checked = 0
    for c in clips[clips.anomalous_frames > 0].itertuples():
        got = np.load(tmp_path / c.shard)["masks"][c.row]
        masks = np.stack(list(records[c.video].iter_anomaly_masks(int(c.start), int(c.stop))))
        h, w = masks.shape[1:]
        for t in range(got.shape[0]):
            pair = masks[2 * t] | masks[2 * t + 1]
            assert bool(got[t].any()) == bool(pair.any())
            for i in range(8):
                for j in range(8):  # patch (i, j): rows floor(i H / 8) .. floor((i + 1) H / 8) - 1
                    block = pair[(i * h) // 8:((i + 1) * h) // 8, (j * w) // 8:((j + 1) * w) // 8]
                    assert got[t, i, j] == block.any()
        checked += 1
    assert checked > 0


def test_clips_cover_every_video_and_respect_splits(built, stages):
    out, stats = built
    clips = pd.read_parquet(out / "clips.parquet")
    videos = stages["videos"].set_index("video")
    assert set(clips.video) == set(videos.index)
    assert (clips.split == videos.loc[clips.video, "split"].to_numpy()).all()
    for v, c in clips.groupby("video"):
        assert c.start.min() == 0 and c.stop.max() == videos.at[v, "num_frames"]
    for s in vocab.SPLITS:
        assert stats.get(f"clips_{s}", 0) == (clips.split == s).sum()


def test_sft_records_are_dialogues_split_by_video(built, stages):
    out, _ = built
    seen: dict[str, str] = {}
    n_b_anomalous = 0
    for f in sorted((out / "sft").glob("phase_*.jsonl")):
        split = f.stem.split("_", 2)[2]
        for r in read_jsonl(f):
            assert r["split"] == split
            assert seen.setdefault(r["video"], split) == split  # no video in two splits
            roles = [m["role"] for m in r["messages"]]
            assert roles == ["user", "assistant"] * (len(roles) // 2) and roles
            if r["phase"] == "B":
                assert r["messages"][0]["content"] == dialogue.Q_ANOMALY
                answer = r["messages"][1]["content"]
                assert answer.startswith("Yes." if r["anomalous"] else "No.")
                if r["anomalous"]:
                    n_b_anomalous += 1
                    assert [m["content"] for m in r["messages"][::2]] == [
                        dialogue.Q_ANOMALY, dialogue.Q_TARGET, dialogue.Q_MOTION, dialogue.Q_FROM_TO, dialogue.Q_ENV
                    ]
                    assert r["answers"]["motion"] in vocab.MOTION_STATES
                    traj = r["answers"]["trajectory"]
                    assert any(w in traj for w in vocab.REGIONS_3X3)
    assert n_b_anomalous > 0
    index = pd.read_parquet(out / "sft.parquet")
    assert index.id.is_unique


def test_manifest_checksums(built):
    out, stats = built
    man = json.loads((out / "manifest.json").read_text())
    assert man["stats"] == json.loads(json.dumps(stats))
    for rel, digest in man["files"].items():
        assert sha256_file(out / rel) == digest


def test_dropped_targets_are_excluded_from_phase_b(stages, records, cfg, tmp_path):
    tables = {k: stages[k] for k in ("videos", "timelines", "track_points")}
    targets = stages["targets"].copy()
    targets["kept"] = False
    targets["drop_reason"] = "motion: planted"
    stats = build_training_sets(records, tables | {"targets": targets}, CLIP, cfg, tmp_path, progress=False)
    assert stats["phase_b_skipped_dropped_target"] > 0
    for f in (tmp_path / "sft").glob("phase_b_*.jsonl"):
        assert not any(r["anomalous"] for r in read_jsonl(f))


def test_sft_records_name_their_footage_and_reference_fields(built, records):
    """Every record carries its footage's digest (the evaluation ties references to it); an anomalous
    phase-B record's `fields` are what its answers state, read back by the evaluation's parser."""
    from tvau.metrics.fields import parse_dialogue

    out, _ = built
    n = 0
    for f in sorted((out / "sft").glob("phase_*.jsonl")):
        for r in read_jsonl(f):
            assert r["footage_sha256"] == sha256_file(records[r["video"]].source)
            if r["phase"] == "B" and r["anomalous"]:
                a = r["answers"]
                got = parse_dialogue(a["target"], a["trajectory"], f"its motion state is {a['motion']}")
                assert got.as_dict() == a["fields"]
                n += 1
    assert n > 0
