"""Nightly batch scoring of footage in S3: plain functions, no Prefect.

core.py (list, batch, score one video, manifests, quarantine), s3io.py (client, retries, resumable
streaming), media.py (input checks, sampled clips), model.py (loading once per worker, the cascade's
model calls), keys.py (safe output keys), summary.py (the nightly table and page), cascade.py (its
recall and savings), verdict.py (the per-video score, calibrated verdict, spans, drift), explain.py
(the trained questions and their fields), demo.py (the demo's synthetic night). flows/score.py wires them into Prefect.
"""
