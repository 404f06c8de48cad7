"""Webhook delivery (placeholder until the delivery worker lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import EmulatorApp


class WebhookDispatcher:
    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
