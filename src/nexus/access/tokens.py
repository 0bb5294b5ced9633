"""API and dashboard tokens, and the dashboard's sessions.

A token is `nxs_` + 256 random bits. It is shown once, when it is created; the database keeps its
SHA-256 (a slow password hash buys nothing against a secret nobody can guess, and would cost every
request) and an 8-character prefix so that `nexus token list` can tell tokens apart.

Two roles: `view` reads everything; `manage` may also replay, resolve, pause, sync and change
stock. A dashboard session is a second random secret in an HttpOnly cookie, bound to the token
that signed in: revoking the token ends its sessions at once.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from nexus.errors import InvalidArgumentError, NexusError
from nexus.storage.models import ApiToken, DashboardSession, utcnow

if TYPE_CHECKING:
    from nexus.storage.database import Database

__all__ = [
    "SESSION_LIFETIME",
    "TOKEN_PREFIX",
    "Principal",
    "Role",
    "TokenError",
    "TokenStore",
    "TokenView",
]

TOKEN_PREFIX = "nxs_"
SESSION_LIFETIME = timedelta(hours=12)
# last_used_at is written at most this often per token: a busy API client must not turn every
# read into a write.
_TOUCH_EVERY = timedelta(minutes=1)


class TokenError(NexusError):
    """An unknown or duplicate token name."""


class Role(enum.StrEnum):
    VIEW = "view"
    MANAGE = "manage"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's name and role, or whatever a host application's auth says."""

    name: str
    role: Role
    via: str = "host"  # what authenticated it: "token", or a host application's own auth

    @property
    def may_manage(self) -> bool:
        return self.role is Role.MANAGE

    @property
    def actor(self) -> str:
        """Who, as the operator action log and the dead-letter history record it."""
        return f"{self.via}:{self.name}"


@dataclass(frozen=True, slots=True)
class TokenView:
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
            "active": self.active,
        }


def role_of(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidArgumentError(
            f"unknown role {value!r}: use {' or '.join(r.value for r in Role)}"
        ) from None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _view(row: ApiToken) -> TokenView:
    return TokenView(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class TokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, name: str, role: Role | str) -> tuple[TokenView, str]:
        """A new token; the secret is returned here and never again."""
        name = name.strip()
        if not name or len(name) > 128:
            raise InvalidArgumentError("a token name is 1 to 128 characters")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(
            name=name, role=role_of(str(role)).value, secret_hash=_digest(secret), prefix=secret[:8]
        )
        try:
            async with self._db.transaction() as session:
                session.add(row)
                await session.flush()
                view = _view(row)
        except IntegrityError:
            raise TokenError(
                f"a token named {name!r} exists; names stay taken after a revoke, choose another"
            ) from None
        return view, secret

    async def list(self) -> list[TokenView]:
        async with self._db.read() as session:
            rows = (await session.scalars(select(ApiToken).order_by(ApiToken.id))).all()
        return [_view(row) for row in rows]

    async def revoke(self, name_or_id: str | int) -> TokenView:
        async with self._db.transaction() as session:
            row = await session.scalar(select(ApiToken).where(_named(name_or_id)))
            if row is None:
                raise TokenError(f"no token named {name_or_id!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            await session.execute(delete(DashboardSession).where(DashboardSession.token_id == row.id))
            await session.flush()
            return _view(row)

    async def authenticate(self, secret: str) -> Principal | None:
        token = await self._active(_digest(secret))
        return None if token is None else Principal(token.name, Role(token.role), via="token")

    async def open_session(self, secret: str) -> tuple[Principal, str, str] | None:
        """Sign in with a token: (principal, session secret for the cookie, CSRF token)."""
        token = await self._active(_digest(secret))
        if token is None:
            return None
        session_secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._db.transaction() as session:
            await session.execute(delete(DashboardSession).where(DashboardSession.expires_at < now))
            session.add(
                DashboardSession(
                    secret_hash=_digest(session_secret),
                    token_id=token.id,
                    csrf=csrf,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
        return Principal(token.name, Role(token.role), via="token"), session_secret, csrf

    async def session(self, session_secret: str) -> tuple[Principal, str] | None:
        """The principal and CSRF token of a live session, or None."""
        async with self._db.read() as session:
            found = (
                await session.execute(
                    select(ApiToken, DashboardSession.csrf)
                    .join(DashboardSession, DashboardSession.token_id == ApiToken.id)
                    .where(
                        DashboardSession.secret_hash == _digest(session_secret),
                        DashboardSession.expires_at > utcnow(),
                        ApiToken.revoked_at.is_(None),
                    )
                )
            ).first()
        if found is None:
            return None
        token, csrf = found
        return Principal(token.name, Role(token.role), via="token"), csrf

    async def close_session(self, session_secret: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(DashboardSession).where(DashboardSession.secret_hash == _digest(session_secret))
            )

    async def _active(self, digest: str) -> ApiToken | None:
        async with self._db.read() as session:
            candidates = (await session.scalars(select(ApiToken).where(ApiToken.secret_hash == digest))).all()
        # The lookup is by hash; compare once more in constant time so that no timing of the
        # index walk tells a caller how close a guess came.
        token = next((row for row in candidates if hmac.compare_digest(row.secret_hash, digest)), None)
        if token is None or token.revoked_at is not None:
            return None
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
            async with self._db.transaction() as session:
                await session.execute(
                    update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
                )
        return token


def _named(name_or_id: str | int) -> Any:
    if isinstance(name_or_id, int) or (isinstance(name_or_id, str) and name_or_id.isdigit()):
        return (ApiToken.id == int(name_or_id)) | (ApiToken.name == str(name_or_id))
    return ApiToken.name == name_or_id
