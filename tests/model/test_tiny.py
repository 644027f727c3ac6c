"""The embedded tiny backbone: deterministic, loadable like a hub checkpoint, with the right tokens."""

from __future__ import annotations

import hashlib
import json
import string

from tvau.model.chat import ANOMALY_TOKENS, QWEN_SPECIAL_TOKENS, VIDEO_PAD
from tvau.model.tiny import build_tiny_tokenizer, tiny_dir, write_tiny_backbone


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tokenizer_is_deterministic_and_round_trips():
    a, b = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    assert json.loads(a.backend_tokenizer.to_str())["model"]["merges"] == \
        json.loads(b.backend_tokenizer.to_str())["model"]["merges"]
    for text in (string.printable, "a person riding bicycle moves from top-left to bottom-right.", "Ωé 漢字"):
        assert a.decode(a.encode(text, add_special_tokens=False)) == text
    # our words are whole tokens (with their leading space), not spelled out byte by byte
    assert len(a.encode(" person running", add_special_tokens=False)) == 2


def test_special_tokens_are_single_distinct_ids():
    tok = build_tiny_tokenizer()
    ids = {}
    for t in (*QWEN_SPECIAL_TOKENS, *ANOMALY_TOKENS):
        enc = tok.encode(t, add_special_tokens=False)
        assert len(enc) == 1, t
        ids[t] = enc[0]
    assert len(set(ids.values())) == len(ids)
    assert ids["<|anomaly_prompt_pad|>"] != ids[VIDEO_PAD]


def test_model_dir_is_ordinary_and_deterministic(tiny_cfg, tmp_path):
    from transformers import AutoConfig

    d = tiny_dir(tiny_cfg.cache_dir, 0)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "preprocessor_config.json"):
        assert (d / name).exists(), name
    cfg = AutoConfig.from_pretrained(d, local_files_only=True)
    assert cfg.model_type == "qwen2_5_vl"
    vc = cfg.vision_config
    assert (vc.patch_size, vc.temporal_patch_size, vc.spatial_merge_size) == (14, 2, 2)
    assert list(vc.fullatt_block_indexes) == [1, 3, 5, 7] and vc.depth == 8
    # Same seed -> byte-identical weights; another seed -> different weights.
    again = write_tiny_backbone(tmp_path / "again", seed=0)
    assert _sha(again / "model.safetensors") == _sha(d / "model.safetensors")
    other = write_tiny_backbone(tmp_path / "other", seed=1)
    assert _sha(other / "model.safetensors") != _sha(d / "model.safetensors")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary build dirs left behind"


def test_dialogue_words_are_whole_tokens():
    """The words of the SFT answers are single tokens (as in Qwen's vocabulary), so the tiny LM
    predicts words, not letters: a phase-B answer is about one token per word."""
    from tvau.construct.dialogue import phase_b_anomalous
    from tvau.synth.palette import LOWER_GARMENTS, UPPER_GARMENTS

    tok = build_tiny_tokenizer()
    for w in (*[g for g in UPPER_GARMENTS if "-" not in g], *LOWER_GARMENTS, "skateboarding", "holds"):
        assert len(tok.encode(" " + w, add_special_tokens=False)) == 1, w
    for w in ("Yes", "No", "Besides"):  # sentence-initial; the first token of an answer decides yes/no
        assert len(tok.encode(w, add_special_tokens=False)) == 1, w
    target = {"described_category": "person", "described_colors": {"upper": "orange", "lower": "white"},
              "described_clothing": "hoodie and trousers with a bag", "described_action": "running",
              "regions": ["left", "middle"], "motion_state": "fast"}
    answer = phase_b_anomalous(target, [])[0][1]["content"]
    assert len(tok.encode(answer, add_special_tokens=False)) <= len(answer.split()) + 6, answer
