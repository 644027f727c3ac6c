"""Data-quality parameters (params.yaml: quality)."""

from __future__ import annotations

from pydantic import Field

from tvau.configbase import Section


class QualityConfig(Section):
    # Where the Great Expectations HTML Data Docs are written (a DVC output of the validate stage,
    # logged as an MLflow artifact by training).
    docs_dir: str = "data/quality/data_docs"
    # Name of the expectation suite and of the Data Docs site (GX's built-in site is "local_site").
    suite_name: str = "tvau_tables"
    # Gate: each split must hold at least this many abnormal videos (0 = report the balance only).
    min_abnormal_videos_per_split: int = Field(0, ge=0)
    # Gate: at most this share of anomalous targets may be dropped by the consistency check
    # before the data set is considered broken (our default: a fifth).
    max_drop_fraction: float = Field(0.2, ge=0, le=1)
