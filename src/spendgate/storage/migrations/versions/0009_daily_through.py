"""rollup_state.daily_through: the daily rollups are folded from closed hours

Revision ID: 0009
Revises: 0008

Until now the writer upserted every call into the daily rollups as well as the
hourly ones. From here it folds recent hours into the daily rollups once they have
closed; ``daily_through`` says how far that has gone. Everything written so far is
in the daily rollups already. For a database that holds calls the mark starts a
day ahead (and after the latest hour recorded): gateways still running the code
before this revision keep writing every call into the daily rollups, and a call of
theirs in an hour the new code later folds would be counted twice; a day is time
for a rolling upgrade to finish. An empty database starts at the current hour.

Frozen here like every migration: a later change to ``rollup_state`` in
``storage/rollups_schema.py`` needs a new migration.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_HOUR_US = 3_600_000_000


def upgrade() -> None:
    op.create_table(
        "rollup_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("daily_through", sa.BigInteger, nullable=False),
    )
    now_us = time.time_ns() // 1000
    latest = op.get_bind().execute(sa.text("SELECT MAX(hour) FROM rollup_hourly")).scalar()
    start = now_us - now_us % _HOUR_US
    if latest is not None:
        start = max(start + 24 * _HOUR_US, int(latest) + _HOUR_US)
    op.execute(
        sa.text("INSERT INTO rollup_state (id, daily_through) VALUES (1, :start)").bindparams(
            start=start
        )
    )


def downgrade() -> None:
    # The code before this revision reads whole days from the daily rollups: fold the
    # hours from daily_through on into them first. Dimensions are the columns of each
    # daily table's unique key but the day, measures the rest.
    bind = op.get_bind()
    through = bind.execute(sa.text("SELECT daily_through FROM rollup_state")).scalar()
    if through is not None:
        inspector = sa.inspect(bind)
        day = f"(hour - hour % {_HOUR_US * 24})"
        for daily, hourly in (
            ("rollup_daily", "rollup_hourly"),
            ("rollup_narrow_daily", "rollup_narrow_hourly"),
            ("rollup_tags_daily", "rollup_tags_hourly"),
        ):
            (unique,) = [
                u for u in inspector.get_unique_constraints(daily) if "day" in u["column_names"]
            ]
            dims = [c for c in unique["column_names"] if c != "day"]
            columns = [c["name"] for c in inspector.get_columns(daily)]
            measures = [c for c in columns if c not in ("id", "day", *dims)]
            sets = ", ".join(f"{m} = {daily}.{m} + excluded.{m}" for m in measures)
            bind.execute(
                sa.text(
                    f"INSERT INTO {daily} (day, {', '.join(dims)}, {', '.join(measures)}) "
                    f"SELECT {day}, {', '.join(dims)}, {', '.join(f'SUM({m})' for m in measures)} "
                    f"FROM {hourly} WHERE hour >= :through GROUP BY {day}, {', '.join(dims)} "
                    f"ON CONFLICT (day, {', '.join(dims)}) DO UPDATE SET {sets}"
                ),
                {"through": int(through)},
            )
    op.drop_table("rollup_state")
