"""The yes/no decision's threshold, fitted on the training clips after stage 2 (ours, not the paper's).

The dialogue's first answer is greedy: "Yes" when logit("Yes") > logit("No"), a threshold of 0 on the
margin. On the embedded LM that threshold is a lottery: the margin ranks anomalous clips above normal
ones (AUC about 0.7 on validation) in every run, but where 0 falls depends on float-level details of
training. Two `make demo` runs whose heatmaps agreed to 1e-4 answered 1 of 30 and 30 of 30 normal
validation clips "Yes". So after stage 2 the margins of the training clips (phase B's
first question, truth from the clip's answer) are computed and the threshold that maximises their
balanced accuracy is kept as TVAU.decision_offset. The answer's first word is then "Yes" or "No" by
that threshold (TVAU restricts the first token to the two words); the rest is the LM's greedy text.
Nothing here looks at a validation or test clip.
"""

from __future__ import annotations

import numpy as np


def balanced_accuracy(yes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean of recall and specificity of the answers `yes` (..., clips) bool against `truth` (clips,)."""
    return ((yes & truth).sum(-1) / truth.sum() + (~yes & ~truth).sum(-1) / (~truth).sum()) / 2


def fit_threshold(margins: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy) of the rule `margin > threshold` => "Yes" that maximises the
    balanced accuracy on (margins, truth). Thresholds are midpoints between consecutive distinct
    margins (and one below / above all of them); ties go to the threshold nearest 0, the plain greedy
    rule, so a model whose greedy answers are already best keeps them. Needs both classes."""
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(truth, dtype=bool)
    if m.shape != y.shape or m.ndim != 1:
        raise ValueError(f"margins {m.shape} and truth {y.shape} must be equal 1-D shapes")
    if y.all() or not y.any():
        raise ValueError("both answers are needed to fit a threshold")
    u = np.unique(m)
    cands = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2, [u[-1] + 1.0], [0.0]])
    bacc = balanced_accuracy(m[None, :] > cands[:, None], y)  # one row per candidate
    best = np.flatnonzero(np.isclose(bacc, bacc.max(), rtol=0, atol=1e-12))
    k = best[np.argmin(np.abs(cands[best]))]
    return float(cands[k]), float(bacc[k])


def calibrate_decision(model, encodings, truth: list[bool], batch: int = 8, rank: int = 0, world: int = 1) -> dict:
    """Fit and set `model.decision_offset` from the clips' encodings and yes/no truth. Returns a
    summary for the training summary (no timings). With `world` ranks (torch.distributed initialised),
    rank r computes batches r, r + world, ... and all ranks gather every batch's margins: the same
    batches as one process, so the same bits, and every rank sets the same offset."""
    import torch

    batch = max(1, batch)
    starts = range(0, len(encodings), batch)
    with torch.no_grad():
        mine = {j: model.decision_margins(encodings[i:i + batch]).cpu()
                for j, i in enumerate(starts) if j % world == rank}
    if world > 1:
        import torch.distributed as tdist

        parts: list = [None] * world
        tdist.all_gather_object(parts, mine)
        mine = {j: m for part in parts for j, m in part.items()}
    m = torch.cat([mine[j] for j in range(len(starts))]).numpy()
    y = np.asarray(truth, dtype=bool)
    before = float(balanced_accuracy(m > 0, y))
    offset, after = fit_threshold(m, y)
    model.decision_offset = offset
    return {"clips": len(y), "yes": int(y.sum()), "offset": round(offset, 6),
            "train_balanced_accuracy_greedy": round(before, 4), "train_balanced_accuracy": round(after, 4)}
