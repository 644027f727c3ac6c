"""backbone_sha256: what a trained model's card pins its backbone to (tvau.model.trained). Checked
against hashlib directly, for the single-file layout of the embedded backbone and the sharded layout
the 7B ships in."""

from __future__ import annotations

import hashlib
import json

from tvau.model.trained import backbone_sha256


def test_single_file_backbone_is_the_sha256_of_its_weights(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    assert backbone_sha256(str(tmp_path)) == hashlib.sha256(b"weights").hexdigest()
    assert backbone_sha256("embedded:tiny") is None
    assert backbone_sha256("Qwen/Qwen2.5-VL-7B-Instruct") is None  # a hub id: its name is its identity
    assert backbone_sha256(str(tmp_path / "missing")) is None


def test_sharded_backbone_covers_the_index_and_every_shard(tmp_path):
    shards = {"model-00001-of-00002.safetensors": b"first half", "model-00002-of-00002.safetensors": b"second"}
    index = json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                       "b": "model-00002-of-00002.safetensors"}}).encode()
    (tmp_path / "model.safetensors.index.json").write_bytes(index)
    for name, data in shards.items():
        (tmp_path / name).write_bytes(data)
    h = hashlib.sha256(index)
    for name in sorted(shards):
        h.update(f"\n{name} {hashlib.sha256(shards[name]).hexdigest()}".encode())
    digest = backbone_sha256(str(tmp_path))
    assert digest == h.hexdigest()

    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"secund")  # one shard edited
    assert backbone_sha256(str(tmp_path)) != digest
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"second")
    assert backbone_sha256(str(tmp_path)) == digest
    (tmp_path / "model-00002-of-00002.safetensors").unlink()  # one shard missing
    assert backbone_sha256(str(tmp_path)) != digest
