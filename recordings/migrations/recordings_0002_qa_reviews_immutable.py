"""qa_reviews: submitted scorecards are immutable in the database

Every row of qa_reviews is a submitted scorecard (`submitted_at` is set on insert; there are
no drafts). A trigger rejects UPDATE and DELETE of such a row on SQLite and PostgreSQL alike,
so nothing but a new row can change a score: a correction is a new version whose `amends_id`
names the row it corrects (recordings_0001 has that column, unique, so the history stays one
chain). PostgreSQL's TRUNCATE fires no row trigger: the test fixture's TRUNCATE and
`pg_restore --clean` (which drops the table) still work.

On SQLite, a later batch migration that recreates qa_reviews drops these triggers with the
old table: such a migration must create them again (`create_triggers` below).

Revision ID: recordings_0002
Revises: recordings_0001
"""

from __future__ import annotations

from alembic import op

revision = "recordings_0002"
down_revision = "recordings_0001"
branch_labels = None
depends_on = None

MESSAGE = "qa_reviews: a submitted scorecard is immutable; submit a correction (a new version)"
SUBMITTED = "OLD.submitted_at IS NOT NULL"

SQLITE = [
    f"""CREATE TRIGGER qa_reviews_no_{verb.lower()} BEFORE {verb} ON qa_reviews
    FOR EACH ROW WHEN {SUBMITTED}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"""
    for verb in ("UPDATE", "DELETE")
]
# 23001 restrict_violation: drivers report it as an integrity error, as SQLite's ABORT is.
POSTGRESQL = [
    f"""CREATE FUNCTION qa_reviews_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation',
            DETAIL = 'qa_reviews.id = ' || OLD.id;
    END $$""",
    f"""CREATE TRIGGER qa_reviews_immutable BEFORE UPDATE OR DELETE ON qa_reviews
    FOR EACH ROW WHEN ({SUBMITTED}) EXECUTE FUNCTION qa_reviews_immutable()""",
]


def create_triggers() -> None:
    for statement in POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)


def upgrade() -> None:
    create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS qa_reviews_immutable ON qa_reviews")
        op.execute("DROP FUNCTION IF EXISTS qa_reviews_immutable()")
    else:
        op.execute("DROP TRIGGER IF EXISTS qa_reviews_no_update")
        op.execute("DROP TRIGGER IF EXISTS qa_reviews_no_delete")
