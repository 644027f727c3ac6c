"""Summary of a dataset tree for `tvau data inspect`: counts overall and per split.

regions = number of ground-truth boxes (one per anomalous object per frame where it is visible,
the RBDC unit); region_words = how often each 3x3 grid word (tvau.vocab.region_of) holds the
centre of such a box.
"""

from __future__ import annotations

from collections import Counter

from tvau.data.record import VideoRecord
from tvau.vocab import REGIONS_3X3, region_of


def _counts(records: list[VideoRecord]) -> dict:
    return {
        "videos": len(records),
        "abnormal_videos": sum(r.is_anomalous for r in records),
        "frames": int(sum(r.num_frames for r in records)),
        "anomalous_frames": int(sum(int(r.frame_labels.sum()) for r in records)),
        "tracks": sum(len(r.tracks) for r in records),
        "regions": int(sum(len(t.frames) for r in records for t in r.tracks)),
    }


def summarize(records: list[VideoRecord], fmt: str, root: str) -> dict:
    words: Counter = Counter()
    for r in records:
        for t in r.tracks:
            for x1, y1, x2, y2 in t.boxes:
                words[region_of((x1 + x2) / 2, (y1 + y2) / 2, r.width, r.height)] += 1
    splits = sorted({r.split or "unsplit" for r in records})
    return {
        "format": fmt,
        "root": root,
        **_counts(records),
        "region_words": {w: words.get(w, 0) for w in REGIONS_3X3},
        "splits": {s: _counts([r for r in records if (r.split or "unsplit") == s]) for s in splits},
        "per_video": [{"name": r.name, "split": r.split, "frames": r.num_frames,
                       "size": [r.width, r.height], "fps": r.fps,
                       "anomalous_frames": int(r.frame_labels.sum()), "tracks": len(r.tracks),
                       "regions": int(sum(len(t.frames) for t in r.tracks))} for r in records],
    }
