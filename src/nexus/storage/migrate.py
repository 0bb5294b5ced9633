"""Schema migrations, run programmatically on the engine's own connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from nexus.errors import SchemaError
from nexus.storage.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x4E455855  # "NEXU": any constant shared by every Nexus process


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(database: Database, revision: str = "head") -> None:
    await _run(database, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(database: Database, revision: str) -> None:
    await _run(database, lambda cfg: command.downgrade(cfg, revision))


async def current_revision(database: Database) -> str | None:
    async with database.engine.connect() as connection:
        return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def require_schema(database: Database) -> None:
    """Raise SchemaError, one line that says to run `nexus migrate`, unless the database holds
    this version's schema. Commands that read or write the tables call it once at start."""
    where = make_url(database.url).render_as_string(hide_password=True)
    try:
        current = await current_revision(database)
    except Exception as exc:  # unreachable server, unreadable file: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise SchemaError(f"cannot open the database {where}: {type(exc).__name__}: {first}") from None
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaError(f"the database {where} has no Nexus tables yet: run `nexus migrate`")
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current not in known:
        raise SchemaError(
            f"the database {where} is at schema revision {current}, newer than this Nexus knows "
            f"({head}): upgrade Nexus"
        )
    raise SchemaError(
        f"the database {where} is at schema revision {current}, this Nexus needs {head}: run `nexus migrate`"
    )


async def _run(database: Database, action: object) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        action(cfg)  # type: ignore[operator]

    async with database.engine.begin() as connection:
        if not database.is_sqlite:
            # Several processes may start at once (`nexus serve` migrates on start): one migrates,
            # the others wait for it and then find nothing to do. Released at commit.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await connection.run_sync(run)
