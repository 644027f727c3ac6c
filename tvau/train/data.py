"""Training samples of both stages, read from the sets `tvau construct build` writes (data/train).

Stage 1: one sample per training clip: (video, start) from clips.parquet and the pooled mask
target (T', H', W') from the AHD shards. Stage 2: one sample per SFT record (phase A or B): the
clip (video, start) and the dialogue turns. Frames are decoded from the footage tree the build read
(train.footage), resized to params `clip`, exactly as tvau/data/clips.py cuts them for scoring.

Data order is a pure function of (seed, stage, phase, epoch): a resumed run replays the same order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tvau.data.clips import load_clip
from tvau.data.config import ClipConfig
from tvau.data.record import VideoRecord


class TrainingDataError(ValueError):
    """A training-set directory that cannot be used; the message names the file."""


@dataclass(frozen=True)
class AHDSample:
    key: str  # "video@start": the clip's identity (feature cache key)
    video: str
    start: int
    target: np.ndarray  # (T', H', W') bool pooled anomaly mask


@dataclass(frozen=True)
class SFTSample:
    key: str
    video: str
    start: int
    turns: tuple[tuple[str, str], ...]  # (question, answer) pairs
    # Loss on the first answer token alone (the yes/no decision of phase Q; answer_loss first_token_only).
    first_token_only: bool = False


def _need(path: Path) -> Path:
    if not path.exists():
        raise TrainingDataError(f"{path}: missing (run `dvc repro build` to make the training sets)")
    return path


def ahd_samples(data_dir: str | Path, split: str = "train") -> list[AHDSample]:
    """Every clip of `split` with its pooled mask, in clips.parquet order."""
    data_dir = Path(data_dir)
    clips = pd.read_parquet(_need(data_dir / "clips.parquet"))
    clips = clips[clips["split"] == split]
    out: list[AHDSample] = []
    for shard, rows in clips.groupby("shard", sort=True):
        with np.load(_need(data_dir / shard)) as z:
            masks, ids = z["masks"], z["clip_id"]
        pos = {int(c): i for i, c in enumerate(ids)}
        for r in rows.itertuples(index=False):
            if int(r.clip_id) not in pos:
                raise TrainingDataError(f"{data_dir / shard}: clip {r.clip_id} of clips.parquet is missing")
            out.append(AHDSample(f"{r.video}@{int(r.start)}", r.video, int(r.start),
                                 masks[pos[int(r.clip_id)]].astype(bool)))
    out.sort(key=lambda s: (s.video, s.start))
    if not out:
        raise TrainingDataError(f"{data_dir / 'clips.parquet'}: no clips in split {split!r}")
    return out


def sft_samples(data_dir: str | Path, phase: str, split: str = "train") -> list[SFTSample]:
    """SFT records of a curriculum phase ('A' or 'B') as (question, answer) turns."""
    path = _need(Path(data_dir) / "sft" / f"phase_{phase.lower()}_{split}.jsonl")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            msgs = r["messages"]
            turns = tuple((q["content"], a["content"]) for q, a in zip(msgs[::2], msgs[1::2]))
            if any(q["role"] != "user" or a["role"] != "assistant" for q, a in zip(msgs[::2], msgs[1::2])):
                raise ValueError("messages must alternate user/assistant")
            out.append(SFTSample(f"{r['video']}@{int(r['start'])}", r["video"], int(r["start"]), turns))
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainingDataError(f"{path}:{lineno}: not an SFT record ({exc})") from None
    if not out:
        raise TrainingDataError(f"{path}: no records")
    return out


def decision_samples(phase_b: list[SFTSample]) -> list[SFTSample]:
    """Phase Q (ours, not the paper's; train.rae_epochs_q): each phase-B record's first question with
    only the first sentence of its answer, "Yes." or "No.". On the embedded 2-layer LM the full
    dialogues alone leave this decision at chance: one token among about 65 answer tokens."""
    out = []
    for s in phase_b:
        question, answer = s.turns[0]
        head = answer.split(".", 1)[0].strip()
        out.append(SFTSample(s.key, s.video, s.start, ((question, head + "."),), first_token_only=True))
    return balanced(out)


def balanced(samples: list[SFTSample]) -> list[SFTSample]:
    """The samples, then the minority answer's samples (by the first answer's first word, "Yes" or
    "No") repeated in order until both answers are equally many: the decision then learns no prior
    (phase B is about 40% "Yes"; the evaluation videos are half anomalous), and greedy decoding's
    implicit threshold sits where the two answers are equally likely."""
    by = {a: [s for s in samples if s.turns[0][1].startswith(a)] for a in ("Yes", "No")}
    small, big = sorted(by.values(), key=len)
    if not small:
        return list(samples)
    return list(samples) + [small[i % len(small)] for i in range(len(big) - len(small))]


def epoch_order(n: int, seed: int, *salt: int) -> np.ndarray:
    """A permutation of range(n) determined by (seed, salt...) only."""
    return np.random.default_rng([seed, *salt]).permutation(n)


class ClipReader:
    """Decodes (video, start) clips from a footage tree at the clip size of params `clip`."""

    def __init__(self, footage: str | Path, clip: ClipConfig):
        from tvau.data import open_dataset

        self.clip = clip
        try:
            self.records: dict[str, VideoRecord] = {
                r.name: r for r in open_dataset(footage, "ubnormal", load_tracks=False)}
        except (ValueError, OSError) as exc:
            raise TrainingDataError(str(exc)) from None

    def __call__(self, video: str, start: int) -> np.ndarray:
        if video not in self.records:
            raise TrainingDataError(f"video {video!r} of the training set is not in the footage tree")
        c = self.clip
        return load_clip(self.records[video], start, c.num_frames, c.height, c.width)
