"""Stored fraud decisions (live and shadow, with every feature's value and contribution) and
the decline history that feeds the features."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.declines import advice_for
from ..domain.payment import Payment, RadarOutcome
from ..fraud.features import Signals
from ..fraud.model import Assessment, Contribution, Decision
from .tables import declines, fraud_decisions

__all__ = ["DecisionStore", "StoredDecision"]


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class StoredDecision:
    payment_id: str
    mode: str
    stage: str
    assessment: Assessment
    signals: Signals
    radar: RadarOutcome | None
    decided_at: float


def signals_to_json(s: Signals) -> dict[str, Any]:
    return asdict(s)


def _assessment(row: Any) -> Assessment:
    return Assessment(
        decision=Decision(row.decision),
        score=float(row.score),
        logit=float(row.logit),
        bias=float(row.bias),
        contributions=tuple(
            Contribution(c["name"], float(c["value"]), float(c["weight"]), float(c["contribution"]))
            for c in row.features
        ),
        rules_fired=tuple(row.rules_fired),
        model_version=row.model_version,
        score_decision=Decision(row.score_decision),
    )


class DecisionStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        payment_id: str,
        mode: str,
        stage: str,
        a: Assessment,
        signals: Signals,
        at: float,
        radar: RadarOutcome | None = None,
    ) -> None:
        await self.session.execute(
            insert(fraud_decisions).values(
                payment_id=payment_id,
                mode=mode,
                stage=stage,
                decision=a.decision.value,
                score_decision=a.score_decision.value,
                score=a.score,
                logit=a.logit,
                bias=a.bias,
                model_version=a.model_version,
                features=[asdict(c) for c in a.contributions],
                rules_fired=list(a.rules_fired),
                signals=signals_to_json(signals),
                radar=asdict(radar) if radar else None,
                decided_at=_ts(at),
            )
        )

    async def for_payment(self, payment_id: str, mode: str = "live") -> list[StoredDecision]:
        stmt = (
            select(fraud_decisions)
            .where(fraud_decisions.c.payment_id == payment_id, fraud_decisions.c.mode == mode)
            .order_by(fraud_decisions.c.id)
        )
        return [self._stored(r) for r in (await self.session.execute(stmt)).all()]

    async def live_pre_auth(
        self, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, StoredDecision]]:
        t = fraud_decisions.c
        stmt = (
            select(fraud_decisions)
            .where(t.mode == "live", t.stage == "pre_auth", t.id > after_id)
            .order_by(t.id)
            .limit(limit)
        )
        return [(r.id, self._stored(r)) for r in (await self.session.execute(stmt)).all()]

    @staticmethod
    def _stored(row: Any) -> StoredDecision:
        return StoredDecision(
            payment_id=row.payment_id,
            mode=row.mode,
            stage=row.stage,
            assessment=_assessment(row),
            signals=Signals(**row.signals),
            radar=RadarOutcome(**row.radar) if row.radar else None,
            decided_at=row.decided_at.timestamp(),
        )

    async def record_decline(self, p: Payment, at: float) -> None:
        """Once per payment (the payment id is the key): what declined, for the features."""
        if p.decline is None:
            return
        exists = await self.session.execute(
            select(declines.c.payment_id).where(declines.c.payment_id == p.id)
        )
        if exists.first() is not None:
            return
        await self.session.execute(
            insert(declines).values(
                payment_id=p.id,
                customer_ref=p.customer_ref,
                card_fingerprint=p.card_fingerprint or None,
                code=p.decline.code,
                decline_code=p.decline.decline_code,
                advice=advice_for(p.decline.decline_code, p.decline.code).value,
                occurred_at=_ts(at),
            )
        )
