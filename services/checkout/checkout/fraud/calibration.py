"""Platt calibration of a model's logit on a later time slice, and its reliability table.

    calibrated logit = a * raw logit + b          p = logistic(calibrated logit)

Platt rather than isotonic: it is monotone (the ranking, hence AUC, AP and Card
Precision@100, is unchanged) and affine in the logit, so the per-feature contributions,
scaled by `a` with the bias moved by `b`, still sum to the calibrated logit that the
decision's score comes from.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Platt", "fit_platt", "reliability_table"]


@dataclass(frozen=True)
class Platt:
    a: float
    b: float

    def logit(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = self.a * raw + self.b
        return out

    def to_json(self) -> dict[str, Any]:
        return {"method": "platt", "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Platt:
        if data.get("method") != "platt":
            raise ValueError(f"calibration: unknown method {data.get('method')!r}")
        return cls(float(data["a"]), float(data["b"]))


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    return out


def fit_platt(raw: NDArray[np.float64], y: NDArray[np.int8], iterations: int = 100) -> Platt:
    """Maximum likelihood (Newton's method) with Platt's smoothed targets, which keep a
    slice with few frauds from producing infinite slopes."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pos, neg = float(y.sum()), float(len(y) - y.sum())
    if pos == 0 or neg == 0:
        raise ValueError("calibration: the slice needs both frauds and genuine payments")
    t = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = _sigmoid(a * raw + b)
        w = np.maximum(p * (1 - p), 1e-12)
        g_a, g_b = float(((p - t) * raw).sum()), float((p - t).sum())
        h_aa, h_ab, h_bb = float((w * raw * raw).sum()), float((w * raw).sum()), float(w.sum())
        det = h_aa * h_bb - h_ab * h_ab
        if det <= 1e-12:
            break
        da = (h_bb * g_a - h_ab * g_b) / det
        db = (h_aa * g_b - h_ab * g_a) / det
        a, b = a - da, b - db
        if abs(da) < 1e-10 and abs(db) < 1e-10:
            break
    return Platt(a, b)


def reliability_table(
    p: NDArray[np.float64],
    y: NDArray[np.int8],
    edges: tuple[float, ...] = (0, 0.01, 0.05, 0.1, 0.2, 0.5, 0.8, 1.0001),
) -> list[dict[str, float]]:
    """Per score band: payments, mean predicted probability, observed fraud rate."""
    rows = []
    for lo, hi in itertools.pairwise(edges):
        m = (p >= lo) & (p < hi)
        n = int(m.sum())
        rows.append(
            {
                "from": float(lo),
                "to": float(min(hi, 1.0)),
                "payments": n,
                "predicted": round(float(p[m].mean()), 6) if n else 0.0,
                "observed": round(float(np.asarray(y)[m].mean()), 6) if n else 0.0,
            }
        )
    return rows
