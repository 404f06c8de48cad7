"""Fraud screening at decision time: history from checkout's tables, the live model and,
beside it, the shadow candidate (recorded, never enforced)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..adapters.fraud_history import FraudHistory
from ..adapters.fraud_store import DecisionStore
from ..fraud.features import Signals, compute_features
from ..fraud.model import Assessment, FraudModel, assess

__all__ = ["FraudScreen", "Screening"]


@dataclass(frozen=True)
class Screening:
    live: Assessment
    shadow: Assessment | None


class FraudScreen:
    def __init__(self, live: FraudModel, shadow: FraudModel | None = None) -> None:
        self.live = live
        self.shadow = shadow

    async def decide(self, session: AsyncSession, signals: Signals, now: float) -> Screening:
        history = await FraudHistory(session).load(signals, now)
        features = compute_features(signals, history, now)
        live = assess(self.live, signals, features)
        shadow = assess(self.shadow, signals, features) if self.shadow is not None else None
        return Screening(live, shadow)

    async def record(
        self, session: AsyncSession, payment_id: str, signals: Signals, s: Screening, now: float
    ) -> None:
        store = DecisionStore(session)
        await store.add(payment_id, "live", "pre_auth", s.live, signals, now)
        if s.shadow is not None:
            await store.add(payment_id, "shadow", "pre_auth", s.shadow, signals, now)
