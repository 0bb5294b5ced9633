"""The operator action log: who changed what through the API or the dashboard, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from nexus.access.tokens import Principal
from nexus.storage.models import OperatorAction

if TYPE_CHECKING:
    from nexus.storage.database import Database

__all__ = ["ActionView", "list_actions", "record_action"]


@dataclass(frozen=True, slots=True)
class ActionView:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        }


async def record_action(
    db: Database, principal: Principal, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    async with db.transaction() as session:
        session.add(
            OperatorAction(
                actor=principal.actor, role=principal.role.value, action=action, target=target, detail=detail
            )
        )


async def list_actions(db: Database, *, limit: int = 50, offset: int = 0) -> tuple[list[ActionView], int]:
    async with db.read() as session:
        total = int(await session.scalar(select(func.count()).select_from(OperatorAction)) or 0)
        rows = (
            await session.scalars(
                select(OperatorAction).order_by(OperatorAction.id.desc()).limit(limit).offset(offset)
            )
        ).all()
    views = [
        ActionView(
            id=row.id,
            at=row.at,
            actor=row.actor,
            role=row.role,
            action=row.action,
            target=row.target,
            detail=row.detail,
        )
        for row in rows
    ]
    return views, total
