"""The trained T-VAU as a scorer: heatmaps over sliding clips covering each video, and the
multi-turn dialogue on a few clips per video (one vision pass per clip serves both).

Heatmaps: clips of params `clip` (num_frames, cover_tail) at `heatmap_stride` (0, the default:
clip.num_frames, no overlap) are cut from the video at the clip size, each clip's per-frame heatmap
(TVAU.heatmap_frames) is computed once, and a frame covered by several clips gets their mean
(evaluate.overlap: "mean", or "max"). Frames are handed on as soon as no later clip covers them, so
a long video is never held whole.

Why `tvau evaluate` uses non-overlapping clips (evaluate.heatmap_stride 0 = clip.num_frames): the
heatmap of a frame pair does not depend on the clip it was cut from. Qwen2.5-VL's vision tower
attends within each temporal patch only (its sequence boundaries are one per temporal grid step),
its rotary positions are spatial, the merger is spatial, and AHD is per position; so two clips that
share a pair, with the pair aligned to the temporal patch, compute the same numbers for it, and
overlapping clips (stride 12 of 24) only computed every heatmap twice
(tests/evaluate/test_batched_eval.py checks stride 24 against 12). RAE does look across the clip:
the dialogue clips keep the training grid (clip.stride) and are encoded besides when off the grid.

Dialogue (docs/method.md sections 7 and 9): on `evaluate.dialogue_clips_per_video` clips per video (the
clips with most anomalous frames, then the one nearest the middle) the model is asked the paper's
first question and, for anomalous clips, the follow-ups in the training order (target, motion,
from-where-to-where), each turn after its own previous answers. The yes/no truth is the clip's
frame labels (any anomalous frame); the references (BLEU and fields) are the phase-B answers of
the same footage (by its digest) and clip, when there are any (tvau/evaluate/references.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from tvau.construct.build import footage_digest
from tvau.data.clips import clip_starts, iter_clips
from tvau.data.config import ClipConfig
from tvau.data.record import VideoRecord
from tvau.questions import Q_ANOMALY, Q_FROM_TO, Q_MOTION, Q_TARGET

# The evaluated dialogue: the opening question to every clip, the follow-ups to the anomalous ones.
DIALOGUE = (Q_ANOMALY, Q_TARGET, Q_MOTION, Q_FROM_TO)


@dataclass
class DialogueResult:
    video: str
    start: int
    truth: bool  # the clip holds an anomalous frame
    answer: str  # answer to Q_ANOMALY
    target: str | None = None  # answers to the follow-ups (anomalous clips only)
    motion: str | None = None
    trajectory: str | None = None
    ref_target: str | None = None  # refined-description references, when known
    ref_motion: str | None = None
    ref_trajectory: str | None = None
    ref_fields: dict | None = None  # what the reference states (tvau.metrics.fields.AnswerFields.as_dict)


def dialogue_clips(record: VideoRecord, clip: ClipConfig, k: int) -> list[int]:
    """The k clip starts of a video that get the dialogue (most anomalous frames, then central)."""
    starts = clip_starts(record.num_frames, clip.num_frames, clip.stride, clip.cover_tail)
    labels = np.asarray(record.frame_labels)
    mid = (record.num_frames - clip.num_frames) / 2
    ranked = sorted(starts, key=lambda s: (-int(labels[s:s + clip.num_frames].sum()), abs(s - mid), s))
    return sorted(ranked[:k])


def videos_per_dialogue_batch(batch: int, clips_per_video: int) -> int:
    """Consecutive videos whose dialogue clips are answered in one batch: batch // clips per video."""
    return max(1, max(1, batch) // max(1, clips_per_video))


@dataclass
class _Pending:
    """A dialogue clip waiting for its batch: its encoding (vision pass done once, for the heatmap)."""

    result: DialogueResult
    ref: dict | None
    enc: object  # ClipEncoding


@dataclass
class ModelScorer:
    """Callable record -> per-frame heatmaps; collects dialogue results as a side effect.

    Batching (the same numbers as one clip at a time: tests/evaluate/test_batched_eval.py):
    `batch` clips of a video share one vision call (TVAU.encode_batch), and the dialogue clips of
    `videos_per_dialogue_batch` consecutive videos (batch // dialogue_per_video, so up to `batch`
    clips) are answered together (TVAU.dialogue_batch: one prefill of the clips' videos and one KV
    cache for all the turns, each answer cut at its own end token). A dialogue batch never splits a
    video's clips, so a run over a stretch of videos that starts at a multiple of it answers in the
    batches of one pass (run.plan_pieces). Dialogues still pending when the last video is scored are
    answered by flush(), which score_set calls; `dialogues` is in video order."""

    model: object  # TVAU
    clip: ClipConfig
    overlap: str = "mean"
    dialogue_per_video: int = 1
    max_new_tokens: int = 48
    references: dict = field(default_factory=dict)  # {(footage digest, clip start): answers}
    dialogues: list[DialogueResult] = field(default_factory=list)
    name: str = "tvau"
    batch: int = 8
    heatmap_stride: int = 0  # frames between heatmap clips; 0 = clip.num_frames, as evaluate.heatmap_stride
    _pending: list[_Pending] = field(default_factory=list, repr=False)
    _pending_videos: int = field(default=0, repr=False)

    @property
    def videos_per_dialogue_batch(self) -> int:
        return videos_per_dialogue_batch(self.batch, self.dialogue_per_video)

    def flush(self) -> list[DialogueResult]:
        """Answer every pending dialogue (first question for all; the follow-ups, in the training
        order, for the anomalous clips, each turn after its own previous answers)."""
        pending, self._pending, self._pending_videos = self._pending, [], 0
        for i in range(0, len(pending), max(1, self.batch)):
            group = pending[i:i + max(1, self.batch)]
            self._answer(group)
            self.dialogues.extend(p.result for p in group)
        return self.dialogues

    def _answer(self, group: list[_Pending]) -> None:
        """One dialogue batch (TVAU.dialogue_batch: the clips' video prefilled once, the follow-ups
        asked in the same KV cache), filled into the clips' results."""
        anomalous = [k for k, p in enumerate(group) if p.result.truth]
        with torch.no_grad():
            dialogues = self.model.dialogue_batch([p.enc for p in group], DIALOGUE,
                                                  max_new_tokens=self.max_new_tokens,
                                                  follow_up=lambda _first: anomalous)
        for p, turns in zip(group, dialogues):
            p.result.answer = turns[0].answer
            if not p.result.truth:
                continue
            p.result.target, p.result.motion, p.result.trajectory = (t.answer for t in turns[1:])
            if p.ref and p.ref.get("yes_no") == "yes":
                p.result.ref_target, p.result.ref_trajectory = p.ref["target"], p.ref["trajectory"]
                p.result.ref_motion, p.result.ref_fields = p.ref["motion"], p.ref.get("fields")

    def _queue_dialogue(self, record: VideoRecord, digest: str, start: int, enc) -> None:
        labels = np.asarray(record.frame_labels)[start:start + self.clip.num_frames]
        ref = self.references.get((digest, start))
        # The dialogue reads the merged tokens and AHD's logits only: drop the tapped features while
        # the clip waits for its batch (on the 7B tower they are most of an encoding's memory).
        enc = dataclasses.replace(enc, vision=dataclasses.replace(enc.vision, taps=[]))
        self._pending.append(_Pending(DialogueResult(record.name, start, bool(labels.any()), ""), ref, enc))

    def __call__(self, record: VideoRecord) -> Iterator[np.ndarray]:
        want = set(dialogue_clips(record, self.clip, self.dialogue_per_video)) if self.dialogue_per_video else set()
        digest = footage_digest(record.source) if want and self.references else ""
        n = record.num_frames
        acc: dict[int, np.ndarray] = {}
        cnt: dict[int, int] = {}
        emitted = 0
        stride = self.heatmap_stride or self.clip.num_frames
        keep = set(clip_starts(n, self.clip.num_frames, stride, self.clip.cover_tail)) | want
        # One decode on the finer grid that holds both the heatmap and the dialogue starts; only the
        # wanted clips go through the model.
        fine = self.clip.model_copy(update={"stride": math.gcd(stride, self.clip.stride)})
        clips = (c for c in iter_clips(record, fine, with_masks=False) if c.start in keep)
        while group := list(itertools.islice(clips, max(1, self.batch))):
            with torch.no_grad():
                encs = self.model.encode_batch([c.frames for c in group])
                heats = [self.model.heatmap_frames(e).numpy() for e in encs]
            for c, enc, heat in zip(group, encs, heats):
                # Every frame before this clip's start is final: hand it on.
                while emitted < min(c.start, n):
                    yield self._final(acc, cnt, emitted)
                    emitted += 1
                for j in range(heat.shape[0]):
                    t = c.start + j
                    if t >= n or t < emitted:
                        continue
                    if t in acc:
                        acc[t] = acc[t] + heat[j] if self.overlap == "mean" else np.maximum(acc[t], heat[j])
                        cnt[t] += 1
                    else:
                        acc[t], cnt[t] = heat[j].astype(np.float32), 1
                if c.start in want:
                    self._queue_dialogue(record, digest, c.start, enc)
        if want:  # this video's dialogue clips are all queued
            self._pending_videos += 1
            if self._pending_videos >= self.videos_per_dialogue_batch:
                self.flush()
        while emitted < n:
            if emitted not in acc:
                raise ValueError(f"{record.name}: frame {emitted} is covered by no clip")
            yield self._final(acc, cnt, emitted)
            emitted += 1

    def _final(self, acc: dict, cnt: dict, t: int) -> np.ndarray:
        h = acc.pop(t)
        c = cnt.pop(t)
        return np.clip(h / c if self.overlap == "mean" else h, 0.0, 1.0)
