"""Parameters of the backbone and the two trained modules (params.yaml: model)."""

from __future__ import annotations

from tvau.configbase import Section


class ModelConfig(Section):
    # "embedded:tiny" builds (once, offline) a tiny Qwen2.5-VL of the real architecture; otherwise a
    # local model directory or a hub id such as "Qwen/Qwen2.5-VL-7B-Instruct".
    backbone: str = "embedded:tiny"
    dtype: str = "float32"  # float32 | bfloat16 | float16
    device: str = "cpu"
