"""The Great Expectations 1.x suite over the pipeline's tables, with HTML Data Docs.

A second, independent statement of the same rules as the pandera models (tvau/quality/schemas.py),
in the form data teams browse: one expectation suite per table, validated through a checkpoint
whose action renders the Data Docs into `quality.docs_dir` (a site of our own; GX's built-in
site is called "local_site"). The context is ephemeral: nothing is written outside docs_dir.
The Data Docs carry run times and ids, so they are not a DVC output (dvc.yaml).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tvau import vocab
from tvau.storage import atomic_dir

MAX_LISTED = 8


def _expectations(name: str, df: pd.DataFrame) -> list:
    import great_expectations.expectations as gxe

    ex: list = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in df.columns]
    box = [
        gxe.ExpectColumnValuesToBeBetween(column="x1", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="y1", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="x2", column_B="x1", or_equal=True),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="y2", column_B="y1", or_equal=True),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="width", column_B="x2"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="height", column_B="y2"),
    ]
    if name == "videos":
        ex += [
            gxe.ExpectColumnValuesToBeUnique(column="video"),
            gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(vocab.SPLITS)),
            gxe.ExpectColumnValuesToBeBetween(column="num_frames", min_value=1),
            gxe.ExpectColumnValuesToBeInSet(column="anomaly_kind", value_set=[""] + list(vocab.ANOMALY_KINDS)),
        ]
    elif name == "frames":
        ex += [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["video", "frame"]),
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
            gxe.ExpectColumnValuesToBeBetween(column="frame", min_value=0),
        ]
    elif name == "detections":
        ex += box + [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["video", "frame", "object_id"]),
            gxe.ExpectColumnValuesToBeInSet(column="category", value_set=list(vocab.CATEGORIES)),
            gxe.ExpectColumnValuesToBeInSet(column="region", value_set=list(vocab.REGIONS_3X3)),
            gxe.ExpectColumnValuesToBeInSet(column="action", value_set=[""] + list(vocab.ACTIONS)),
        ]
    elif name == "track_points":
        ex += box + [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["video", "track_id", "frame"]),
            gxe.ExpectColumnValuesToBeInSet(column="region", value_set=list(vocab.REGIONS_3X3)),
        ]
    elif name == "timelines":
        ex += [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["video", "track_id"]),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end", column_B="start", or_equal=True),
            gxe.ExpectColumnValuesToBeInSet(column="category", value_set=list(vocab.CATEGORIES)),
            gxe.ExpectColumnValuesToBeInSet(column="motion_state", value_set=list(vocab.MOTION_STATES)),
            gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(vocab.SPLITS)),
            gxe.ExpectColumnValuesToBeBetween(column="speed", min_value=0),
        ]
    elif name == "targets":
        ex += [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["video", "track_id"]),
            gxe.ExpectColumnValuesToBeInSet(column="measured_motion", value_set=list(vocab.MOTION_STATES)),
            gxe.ExpectColumnValuesToBeInSet(column="category", value_set=list(vocab.CATEGORIES)),
        ]
    return ex


def run_suite(tables: dict[str, pd.DataFrame], docs_dir: str | Path, suite_name: str) -> dict:
    """Validate each table with its suite and build the Data Docs into `docs_dir`.

    Returns {"success": bool, "docs_index": path, "tables": {name: {"success", "failures":
    [{"expectation", "column", "unexpected_count", "examples"}]}}}."""
    shown = Path(docs_dir)  # as configured (relative paths keep the report clone-independent)
    # Built into a fresh directory swapped in at the end: the site shows this run only (GX would
    # otherwise keep adding validation pages of earlier runs to an existing site).
    with atomic_dir(shown.resolve()) as tmp:
        out = _run(tables, Path(tmp), suite_name)
    out["docs_index"] = str(shown / "index.html")
    return out


def _run(tables: dict[str, pd.DataFrame], docs_dir: Path, suite_name: str) -> dict:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    site = f"{suite_name}_docs"
    ctx.add_data_docs_site(
        site,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = ctx.data_sources.add_pandas(suite_name)
    out: dict = {"success": True, "tables": {}}
    for name, df in tables.items():
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(name)
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{suite_name}.{name}"))
        for e in _expectations(name, df):
            suite.add_expectation(e)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{suite_name}.{name}", data=batch, suite=suite))
        cp = ctx.checkpoints.add(
            gx.Checkpoint(
                name=f"{suite_name}.{name}",
                validation_definitions=[vd],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[site])],
                result_format="SUMMARY",
            )
        )
        result = cp.run(batch_parameters={"dataframe": df.reset_index(drop=True)})
        failures = []
        for vr in result.run_results.values():
            for er in vr.results:
                if er.success:
                    continue
                kw = er.expectation_config.kwargs
                column = kw.get("column") or kw.get("column_list") or [kw.get("column_A"), kw.get("column_B")]
                failures.append(
                    {
                        "expectation": er.expectation_config.type,
                        "column": column,
                        "unexpected_count": er.result.get("unexpected_count"),
                        "examples": [repr(v) for v in (er.result.get("partial_unexpected_list") or [])[:MAX_LISTED]],
                    }
                )
        out["tables"][name] = {"success": bool(result.success), "failures": failures}
        out["success"] &= bool(result.success)
    ctx.build_data_docs(site_names=[site])
    return out
