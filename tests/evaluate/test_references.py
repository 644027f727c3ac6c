"""References are tied to the footage they describe (tvau/evaluate/references.py): by digest, never
by video name or path; a set without SFT records gets references from its own annotations."""

import shutil

from tvau.construct.build import footage_digest
from tvau.data import open_dataset
from tvau.evaluate.model import dialogue_clips
from tvau.evaluate.references import annotation_references, read_sft_references, references_for
from tvau.storage import write_jsonl

MARK = {"yes_no": "yes", "target": "A purple ball, flying through the air.", "motion": "fast",
        "trajectory": "It moves from the top to the bottom."}


def _sft(tmp_path, rows):
    d = tmp_path / "sft"
    d.mkdir()
    write_jsonl(d / "phase_b_validation.jsonl", rows)
    return d


def test_same_name_other_footage_does_not_match(tmp_path):
    a, b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    for p, data in ((a, b"footage one"), (b, b"footage two")):
        p.parent.mkdir()
        p.write_bytes(data)
    sft = _sft(tmp_path, [{"video": "clip", "source": str(a), "footage_sha256": footage_digest(a), "start": 0,
                           "answers": MARK},
                          {"video": "clip", "source": str(b), "start": 0, "answers": MARK}])  # no digest: unusable
    refs = read_sft_references(sft)
    assert refs == {(footage_digest(a), 0): MARK}
    assert (footage_digest(b), 0) not in refs and footage_digest(a) != footage_digest(b)
    b.write_bytes(b"footage one")  # the same bytes under another path are the same footage
    assert (footage_digest(b), 0) in refs


def test_frame_folder_digest_follows_its_files(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    (d / "000.jpg").write_bytes(b"x")
    first = footage_digest(d)
    (d / "000.jpg").write_bytes(b"y")
    assert footage_digest(d) != first


def test_references_for_uses_sft_only_for_its_own_footage(footage, params, tmp_path):
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    other = tmp_path / "other"  # the same video names, rendered from another seed
    generate(other, SynthConfig(videos=4, size=64, frames=24, scenes=2, anomaly_fraction=0.5, train_fraction=0.5,
                                validation_fraction=0.5, anomaly_mix={"bicycle": 1, "vehicle": 1}), 6, workers=1,
             progress=False)
    mine, theirs = list(open_dataset(footage)), list(open_dataset(other))
    assert {r.name for r in mine} == {r.name for r in theirs}
    starts = {r.name: dialogue_clips(r, params.clip, 1) for r in mine}
    rows = [{"video": r.name, "source": str(r.source), "footage_sha256": footage_digest(r.source), "start": s,
             "answers": MARK} for r in mine for s in starts[r.name]]
    sft = _sft(tmp_path, rows)
    with_sft = references_for(mine, footage, sft, starts, params.clip, params)
    assert len(with_sft) == len(rows) and all(v == MARK for v in with_sft.values())
    other_starts = {r.name: dialogue_clips(r, params.clip, 1) for r in theirs}
    got = references_for(theirs, other, sft, other_starts, params.clip, params)
    assert MARK not in got.values()  # the names match, the footage does not
    assert got == annotation_references(theirs, other, other_starts, params.clip, params)
    assert {k[0] for k in got} <= {footage_digest(r.source) for r in theirs}
    anomalous = [v for v in got.values() if v["yes_no"] == "yes"]
    assert anomalous and all(set(v["fields"]) >= {"category", "from_region"} for v in anomalous)


def test_a_copied_tree_keeps_its_references(footage, params, tmp_path):
    """Moving the footage does not lose its SFT references (the old rule matched resolved paths)."""
    copy = tmp_path / "copy"
    shutil.copytree(footage, copy)
    recs = list(open_dataset(copy))
    starts = {r.name: dialogue_clips(r, params.clip, 1) for r in recs}
    rows = [{"video": r.name, "source": "elsewhere.mp4", "footage_sha256": footage_digest(r.source), "start": s,
             "answers": MARK} for r in recs for s in starts[r.name]]
    got = references_for(recs, copy, _sft(tmp_path, rows), starts, params.clip, params)
    assert len(got) == len(rows) and all(v == MARK for v in got.values())
