"""Read and write the pipeline's tables, validating each against its pandera model every time.

Validation is lazy (every failure is collected, not just the first) and a failure raises
DataQualityError whose message names the table, the file, each failing check with its columns,
and the rows (by their identifying columns, e.g. video and frame). Nothing is written when a
table fails: the check runs before the atomic write.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow

from tvau.quality.schemas import CHECK_COLUMNS, ROW_KEYS, SCHEMAS
from tvau.storage import atomic_path

MAX_ROWS_SHOWN = 8  # rows listed per failing check in a report; the count is always complete


class DataQualityError(ValueError):
    """A table failed its checks. `failures` is a list of dicts (table, check, columns, rows...)."""

    def __init__(self, message: str, failures: list[dict]):
        super().__init__(message)
        self.failures = failures


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _row_label(df: pd.DataFrame, idx, keys: tuple[str, ...]) -> str:
    if idx is None or (isinstance(idx, float) and pd.isna(idx)) or idx not in df.index:
        return "?"
    row = df.loc[idx]
    parts = [f"{k}={_plain(row[k])!r}" for k in keys if k in df.columns]
    return f"row {idx} (" + ", ".join(parts) + ")" if parts else f"row {idx}"


def describe_failures(name: str, df: pd.DataFrame, err: pa.errors.SchemaErrors) -> list[dict]:
    """Turn pandera's failure-case table into one entry per (column, check). A dataframe-wide
    check is reported once, with the columns CHECK_COLUMNS gives it (pandera lists it under every
    column of the failing rows)."""
    fc = err.failure_cases.copy()
    fc["check_name"] = fc["check"].astype(str).str.split(":").str[0]
    wide = fc["check_name"].isin(list(CHECK_COLUMNS))
    fc["group_column"] = fc["column"].astype(object).where(~wide & fc["column"].notna(), "")
    out: list[dict] = []
    keys = ROW_KEYS.get(name, ())
    for (column, check), grp in fc.groupby(["group_column", "check"], sort=True):
        check_name = grp["check_name"].iloc[0]
        if check_name in CHECK_COLUMNS:
            columns = list(CHECK_COLUMNS[check_name])
            cases = grp.drop_duplicates("index")
            values = [
                ", ".join(f"{c}={_plain(df.loc[i, c])!r}" for c in columns if c in df.columns)
                if i in df.index else "?"
                for i in cases["index"].tolist()
            ]
        elif column == "" or column in (name, SCHEMAS[name].__name__):
            # table-level checks (missing / unexpected column): pandera puts the column in the case
            columns = [str(v) for v in grp["failure_case"].tolist()]
            cases, values = grp, [repr(_plain(v)) for v in grp["failure_case"].tolist()]
        else:
            columns = [str(column)]
            cases, values = grp, [repr(_plain(v)) for v in grp["failure_case"].tolist()]
        idx = [i for i in cases["index"].tolist() if i is not None and not pd.isna(i)]
        out.append(
            {
                "table": name,
                "check": str(check),
                "columns": columns,
                "num_rows": len(idx) if idx else len(cases),
                "rows": [_row_label(df, i, keys) for i in idx[:MAX_ROWS_SHOWN]],
                "failure_cases": values[:MAX_ROWS_SHOWN],
            }
        )
    return out


def format_failures(failures: list[dict], where: str) -> str:
    lines = [f"{where}: {len(failures)} data-quality check(s) failed"]
    for f in failures:
        cols = ", ".join(f["columns"]) or "(table)"
        lines.append(f"  [{f['table']}] column(s) {cols}: check {f['check']} failed on {f['num_rows']} row(s)")
        for r, v in zip(f["rows"], f["failure_cases"]):
            lines.append(f"      {r}: {v}" if v else f"      {r}")
        if f["num_rows"] > len(f["rows"]) and f["rows"]:
            lines.append(f"      ... and {f['num_rows'] - len(f['rows'])} more")
    return "\n".join(lines)


def validate(name: str, df: pd.DataFrame, where: str | Path | None = None) -> pd.DataFrame:
    """Validate `df` as table `name`; returns the (coerced) frame or raises DataQualityError."""
    schema = SCHEMAS[name]
    try:
        return schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as err:
        failures = describe_failures(name, df, err)
        raise DataQualityError(format_failures(failures, str(where or name)), failures) from None


def write_table(name: str, df: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Validate, then write Parquet atomically. Nothing is written if validation fails."""
    df = validate(name, df.reset_index(drop=True), where=f"{path} (write)")
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return df


class StaleTableError(ValueError):
    """A table's bytes are not the ones a quality report vouched for."""


def load_parquet(name: str, path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read a Parquet file once, without validating it: the frame and the SHA-256 of exactly the
    bytes it was parsed from (so a digest check and the data read can never disagree). A missing
    file is FileNotFoundError; a file that is not readable Parquet is a DataQualityError naming
    it (check `readable_parquet`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: table '{name}' not found (run the stage that writes it)")
    data = path.read_bytes()
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        failure = {"table": name, "check": "readable_parquet", "columns": [], "num_rows": 0,
                   "rows": [f"{path}: {type(exc).__name__}: {exc}"], "failure_cases": [""]}
        raise DataQualityError(f"{path}: table '{name}' is not readable Parquet: {exc}", [failure]) from None
    return df, hashlib.sha256(data).hexdigest()


def read_table(name: str, path: str | Path, expect_sha256: str | None = None) -> pd.DataFrame:
    """Read Parquet and validate it; a missing or unreadable file is an error naming it. With
    `expect_sha256`, the bytes read must be exactly those (else StaleTableError)."""
    df, digest = load_parquet(name, path)
    if expect_sha256 is not None and digest != expect_sha256:
        raise StaleTableError(
            f"{path}: table '{name}' changed since the quality report vouched for it "
            f"(sha256 {digest[:12]}..., report {expect_sha256[:12]}...); run `tvau quality validate` again"
        )
    return validate(name, df, where=f"{path} (read)")


def write_tables(
    tables: dict[str, pd.DataFrame], out_dir: str | Path, extras: dict[str, object] | None = None
) -> dict[str, pd.DataFrame]:
    """Validate every table (collecting the failures of all of them), then write them as
    `{out_dir}/{name}.parquet`, plus each `extras` entry as `{out_dir}/{key}.json`, in one atomic
    directory swap: all or nothing, and a failure leaves the previous directory untouched."""
    from tvau.storage import atomic_dir, write_json

    out_dir = Path(out_dir)
    checked: dict[str, pd.DataFrame] = {}
    failures: list[dict] = []
    for name, df in tables.items():
        try:
            checked[name] = validate(name, df.reset_index(drop=True), where=out_dir / f"{name}.parquet")
        except DataQualityError as exc:
            failures += exc.failures
    if failures:
        raise DataQualityError(format_failures(failures, f"{out_dir} (write)"), failures)
    with atomic_dir(out_dir) as tmp:
        for name, df in checked.items():
            df.to_parquet(Path(tmp) / f"{name}.parquet", index=False)
        for key, obj in (extras or {}).items():
            write_json(Path(tmp) / f"{key}.json", obj)
    return checked


def read_tables(in_dir: str | Path, names: list[str]) -> dict[str, pd.DataFrame]:
    """Read and validate `{in_dir}/{name}.parquet` for each name."""
    return {name: read_table(name, Path(in_dir) / f"{name}.parquet") for name in names}
