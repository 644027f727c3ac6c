"""params.yaml -> typed, validated parameters. The single loader; DVC stages read the same file.

Each section's model lives beside the code it configures (tvau/model/config.py, ...); this module
only composes them and turns pydantic's errors into messages that name the file and the key.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from pydantic import Field

from tvau.configbase import ParamsError, Section, load_sections
from tvau.construct.config import ConstructConfig
from tvau.data.config import ClipConfig
from tvau.evaluate.config import EvaluateConfig
from tvau.metrics.config import MetricsConfig
from tvau.model.config import ModelConfig
from tvau.pretrain.config import PretrainConfig
from tvau.quality.config import QualityConfig
from tvau.registry.config import RegistryConfig
from tvau.score.config import ScoreConfig
from tvau.stack.config import StackConfig
from tvau.synth.config import SynthConfig
from tvau.train.config import TrainConfig

__all__ = ["DEFAULT_PARAMS", "Params", "ParamsError", "StorageConfig", "load_params"]  # ParamsError: its callers import it here
DEFAULT_PARAMS = Path("params.yaml")


class StorageConfig(Section):
    dvc_remote: str = "local"  # name of the DVC remote used by `dvc push` (see .dvc/config)
    s3_bucket: str = "tvau"  # bucket for footage and artifacts when S3 is configured


# The section is named "construct" in params.yaml and the DVC stages; pydantic warns that this
# shadows the deprecated BaseModel.construct classmethod, which nothing here uses.
warnings.filterwarnings("ignore", message='Field name "construct"', category=UserWarning)


class Params(Section):
    seed: int = 0  # global seed: generator, model initialisation, sampling
    model: ModelConfig = Field(default_factory=ModelConfig)
    clip: ClipConfig = Field(default_factory=ClipConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    construct: ConstructConfig = Field(default_factory=ConstructConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    stack: StackConfig = Field(default_factory=StackConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate a params file (configbase.load_sections). The code's defaults equal
    params.yaml's values (tests/test_config.py), but a run should say which file it read."""
    return load_sections(path, Params)
