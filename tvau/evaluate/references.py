"""The reference dialogues of the evaluated clips (BLEU and field accuracy), tied to the footage.

A reference describes one clip of one footage file. Video names recur in every synthetic set (each
seed renders its own abnormal_scene_1_scenario_1) and a folder can be rendered over, so a reference
is looked up by (footage digest, clip start) -- tvau.construct.build.footage_digest, the SHA-256 of
the video file -- never by name or path. Per evaluated video, the references come from:
1. phase-B SFT records (`--references`, e.g. data/train/sft) whose `footage_sha256` is the video's
   digest: the references the model was built beside. A record without a digest (written before
   the builder recorded one) matches nothing;
2. otherwise the set's own annotations: the construction stages (tvau/construct: annotate with
   params construct.annotator, timelines, refine) run on those videos, and each dialogue clip gets
   the phase-B answers the build stage would write for it (tvau.construct.build.phase_b). On a
   synthetic tree the default oracle annotator reads the generator's sidecar and object maps; the
   quality gate of the training data is not applied to references.
A clip whose phase-B record is skipped (its target was dropped, or is not in the clip) has no
reference; the evaluation counts such clips instead of scoring them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tvau.data.config import ClipConfig
from tvau.data.record import VideoRecord

Key = tuple[str, int]  # (footage digest, clip start)


def read_sft_references(sft_dir: str | Path | None) -> dict[Key, dict]:
    """{(footage digest, clip start): answers} from the phase-B SFT files of every split."""
    out: dict[Key, dict] = {}
    if sft_dir is None or not Path(sft_dir).is_dir():
        return out
    from tvau.storage import read_jsonl

    for f in sorted(Path(sft_dir).glob("phase_b_*.jsonl")):
        for r in read_jsonl(f):
            if r.get("answers") and r.get("footage_sha256"):
                out[(r["footage_sha256"], int(r["start"]))] = r["answers"]
    return out


def annotation_references(records: Sequence[VideoRecord], root: str | Path, starts: dict[str, list[int]],
                          clip: ClipConfig, params, progress: bool = False) -> dict[Key, dict]:
    """{(footage digest, clip start): answers} for the given clip starts of each record, from the
    set's own annotations through the construction stages (module docstring, item 2)."""
    from tvau.construct.build import _objects_in, footage_digest, phase_b
    from tvau.construct.choose import make_annotator
    from tvau.construct.frames import annotate_dataset, video_kinds
    from tvau.construct.refine import refine_targets
    from tvau.construct.sidecar import load_attributes
    from tvau.construct.timelines import build_timelines

    records = [r for r in records if starts.get(r.name)]
    if not records:
        return {}
    cfg = params.construct
    annotator = make_annotator(cfg, root, params.model)
    tables = annotate_dataset(records, annotator, cfg, video_kinds(load_attributes(root)), progress)
    tl, _ = build_timelines(tables["videos"], tables["detections"], cfg, progress)
    targets, _ = refine_targets({r.name: r for r in records}, tables["videos"], tl["timelines"],
                                tl["track_points"], annotator, cfg, progress)
    by_tl = {v: t.set_index("track_id") for v, t in tl["timelines"].groupby("video")}
    by_pts = dict(tuple(tl["track_points"].groupby("video")))
    by_tg = {v: t.set_index("track_id") for v, t in targets.groupby("video")}
    out: dict[Key, dict] = {}
    for r in records:
        digest, timelines = footage_digest(r.source), by_tl.get(r.name)
        for start in starts[r.name]:
            stop = min(r.num_frames, start + clip.num_frames)
            objs = [] if timelines is None else _objects_in(by_pts[r.name], timelines, start, stop, r.width,
                                                            r.height, r.fps, cfg)
            b = phase_b(objs, bool(r.frame_labels[start:stop].any()), by_tg.get(r.name, _no_targets()))
            if not isinstance(b, str):
                out[(digest, start)] = b[1]
    return out


def _no_targets():
    import pandas as pd

    return pd.DataFrame()


def references_for(records: Sequence[VideoRecord], root: str | Path, sft_dir: str | Path | None,
                   starts: dict[str, list[int]], clip: ClipConfig, params, progress: bool = False) -> dict[Key, dict]:
    """The references of the dialogue clips `starts` ({video: clip starts}) of `records`: SFT
    records of the same footage where there are any, else the set's own annotations."""
    from tvau.construct.build import footage_digest

    sft = read_sft_references(sft_dir)
    digests = {r.name: footage_digest(r.source) for r in records}
    covered = {r.name for r in records if any((digests[r.name], s) in sft for s in starts.get(r.name, []))}
    own = annotation_references([r for r in records if r.name not in covered], root, starts, clip, params, progress)
    return {k: v for k, v in sft.items() if k[0] in set(digests.values())} | own
