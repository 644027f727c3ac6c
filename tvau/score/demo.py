"""The demo's last step: a synthetic night of footage, one corrupt file included, uploaded to the
project's S3 server and scored by the nightly flow with a given model.

    from tvau.score.demo import score_night
    score_night("models:/tvau@champion", out_dir=Path("outputs/demo/score"))

The night is rendered once per seed into the working area (.tvau/score-demo/), uploads skip objects
whose bytes are already there, and the flow skips videos whose manifest is up to date, so a second
run reuses everything. The S3 server is the one named by AWS_ENDPOINT_URL or, when unset, a
`tvau s3-server` started on a free loopback port over `.tvau/s3` (objects persist between runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path

WORK = Path(".tvau") / "score-demo"
CORRUPT = "cam-03/2026-11-25T02-14-07.mp4"  # a recording cut short: the flow must quarantine it


def _say(msg: str) -> None:
    print(f"[tvau score demo] {msg}", flush=True)


def _night(seed: int, videos: int, frames: int, size: int) -> list[Path]:
    from tvau.synth.config import SynthConfig
    from tvau.synth.generate import generate

    root = WORK / f"night-s{seed}-v{videos}-f{frames}-{size}"
    if not root.exists():
        # One worker: the demo calls this after the retrain flow, in a process that holds Prefect's
        # and MLflow's threads, and a forked render pool deadlocked there (seen in `make demo`).
        generate(root, SynthConfig(videos=videos, frames=frames, size=size, scenes=min(videos, 3)), seed=seed,
                 workers=1, progress=False)
    return sorted(root.rglob("*.mp4"))


@contextlib.contextmanager
def _server(data_dir: Path):
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield {}
        return
    from tvau.s3server import running_s3_server

    with running_s3_server(buckets=("footage", "results"), data_dir=data_dir) as env:
        yield env


def score_night(model_uri: str, out_dir: str | Path = Path("outputs/demo/score"), seed: int = 2026,
                videos: int = 3, frames: int = 48, size: int = 128, run_date: str | None = None,
                input_prefix: str = "s3://footage/{date}/", output_prefix: str = "s3://results/nightly",
                params_path: str = "params.yaml", s3_data_dir: str | Path = Path(".tvau") / "s3",
                loader=None) -> dict:
    """Upload a synthetic night (plus one corrupt file) and score it; returns the flow's summary
    and prints where the report is (S3 and a local copy under out_dir). Raises CalibrationError
    (one line, naming the fix) when the model carries no calibration.json."""
    from flows.score import run
    from tvau.score.config import ScoreConfig
    from tvau.score.model import check_calibration
    from tvau.score.s3io import make_client, put_bytes
    from tvau.storage import ensure_bucket, temporary_environ

    check_calibration(model_uri)
    run_date = run_date or dt.date.today().isoformat()
    input_prefix = input_prefix.replace("{date}", run_date)
    night = _night(seed, videos, frames, size)
    out_dir = Path(out_dir)
    with _server(Path(s3_data_dir)) as env, temporary_environ(env):
        cfg = ScoreConfig()
        client = make_client(cfg)
        for b in ("footage", "results"):
            ensure_bucket(b, client)
        uploaded = 0
        for i, v in enumerate(night):
            key = f"{input_prefix}cam-{i % 3 + 1:02d}/{v.stem}.mp4"
            uploaded += put_bytes(client, key, v.read_bytes(), cfg, "video/mp4", skip_if_same=True)
        data = night[0].read_bytes()
        uploaded += put_bytes(client, f"{input_prefix}{CORRUPT}", data[: len(data) // 3], cfg, "video/mp4",
                              skip_if_same=True)
        _say(f"{len(night) + 1} videos under {input_prefix} ({uploaded} uploaded, the rest already there; "
             f"one is cut short on purpose)")
        summary = run(input_prefix, output_prefix, model_uri=model_uri, run_date=run_date,
                      params_path=params_path, report_dir=str(out_dir), loader=loader)
    c = summary["counts"]
    _say(f"scored {c['scored']}, up to date {c['skipped']}, quarantined {c['quarantined']}, failed {c['failed']}; "
         f"{summary['flagged']} flagged anomalous; {summary['escalated_clips']} of {summary['clips']} clips "
         "explained by the language model")
    mon = summary.get("monitoring") or {}
    if mon.get("drift"):
        _say(f"drift: {'; '.join(mon['reasons'])}")
    _say(f"report: {summary['report']}  (local copy: {summary.get('local_report')})")
    return summary

