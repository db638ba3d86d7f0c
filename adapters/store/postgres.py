"""PostgreSQL persistence with ``notification_position()`` and ``stream_positions()`` on
application recorders.

Select it with ``PERSISTENCE_MODULE=adapters.store.postgres`` (plus the library's
``POSTGRES_*`` variables). The library's recorder already subscribes with
LISTEN/NOTIFY; this only adds the lookups that the SQLite adapter also offers, so
callers can treat both backends alike.

Only modules, not factory classes, are imported from eventsourcing here:
``InfrastructureFactory.construct`` picks *the one* factory class found in this
module's namespace, and an imported ``PostgresFactory`` would make that two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing import postgres as es_postgres
from psycopg.sql import SQL, Identifier

if TYPE_CHECKING:
    from uuid import UUID

__all__ = ["Factory", "PostgresApplicationRecorderWithPosition"]


class PostgresApplicationRecorderWithPosition(es_postgres.PostgresApplicationRecorder):
    """``PostgresApplicationRecorder`` plus ``notification_position()`` and
    ``stream_positions()``."""

    def __init__(
        self,
        datastore: es_postgres.PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        # The table is per application ("<app name>_events", or "stored_events"
        # without a name) in the datastore's schema (POSTGRES_SCHEMA, or "public").
        # The primary key (originator_id, originator_version) makes this one lookup.
        self.select_notification_position_statement = SQL(
            "SELECT notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )
        self.select_stream_positions_statement = SQL(
            "SELECT originator_version, notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s ORDER BY originator_version"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
        )

    def notification_position(
        self, originator_id: UUID | str, originator_version: int
    ) -> int | None:
        """Return the notification ID of a stored event, or None if not stored.

        Lets a caller that has just written an event wait for projections to reach
        it (``ProjectionRunner.wait(position)``) without keeping the insert result.
        """
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                self.select_notification_position_statement,
                (originator_id, originator_version),
                prepare=True,
            )
            row = curs.fetchone()
        return None if row is None else int(row["notification_id"])

    def stream_positions(self, originator_id: UUID | str) -> dict[int, int]:
        """Each stored version of a stream and its notification ID, in one SELECT.

        What a reader showing a whole stream with positions needs, instead of one
        ``notification_position()`` per event.
        """
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_stream_positions_statement, (originator_id,), prepare=True)
            rows = curs.fetchall()
        return {int(r["originator_version"]): int(r["notification_id"]) for r in rows}


class Factory(es_postgres.PostgresFactory):
    """``PostgresFactory`` whose application recorders have ``notification_position()``.

    Aggregate, tracking and process recorders stay the library's classes.
    """

    application_recorder_class = PostgresApplicationRecorderWithPosition
