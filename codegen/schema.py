"""The database schema, declared once. `python -m codegen sql` renders it into db/migrations/00_init.sql
(what existed at version 00, never changed once applied) and db/full_schema.sql (everything, for fresh
installs). Later changes carry `since=N` and ship as hand-written migrations `db/migrations/0N_*.sql`;
a test checks that applying the migrations gives exactly the full schema.

Names and columns follow the Playbook Workflow Builder (`user`, `upload`, `user_upload`, the view
`user_upload_complete`) so that PWB clients and queries keep working; drsbox adds md5, unique keys that
make uploads idempotent under concurrency, and hashed API tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_USER_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    null: bool = True
    default: str | None = None
    references: str | None = None  # "table(column) ON DELETE ..."
    since: int = 0  # the migration that added it


@dataclass(frozen=True)
class Index:
    name: str
    definition: str  # "(columns) [WHERE ...]"
    since: int = 0


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ("id",)
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = ()
    checks: tuple[str, ...] = ()
    since: int = 0


@dataclass(frozen=True)
class View:
    name: str
    query: str
    since: int = 0  # a later version of a view replaces the earlier one (columns may only be appended)


TABLES: tuple[Table, ...] = (
    Table(
        "user",
        (
            Column("id", "uuid", null=False, default="gen_random_uuid()"),
            Column("name", "varchar"),
            Column("email", "varchar", null=False, default="''"),
            Column("emailVerified", "timestamptz"),
            Column("image", "varchar"),
            Column("affiliation", "varchar"),
            # drsbox: the login name that `python server.py create-token USERNAME` refers to.
            Column("username", "varchar"),
            Column("created", "timestamptz", null=False, default="now()"),
        ),
        unique=(("username",),),
        indexes=(Index("user_email_idx", "(email)"),),
    ),
    Table(
        "upload",
        (
            Column("id", "uuid", null=False, default="gen_random_uuid()"),
            # storage://<sha256> for stored blobs, or the URL of a file registered by reference.
            Column("url", "varchar", null=False),
            Column("sha256", "varchar", null=False),
            Column("size", "bigint", null=False),
            # Null for rows written by PWB, which never computed md5.
            Column("md5", "varchar"),
            Column("created", "timestamptz", null=False, default="now()"),
            # Garbage collection: when the row was first seen with no user_upload referring to it.
            Column("orphaned", "timestamptz", since=1),
            # Integrity scrub: when the blob was last re-hashed, and whether its bytes no longer match.
            Column("scrubbed", "timestamptz", since=1),
            Column("corrupt", "boolean", null=False, default="false", since=1),
        ),
        unique=(("url",),),
        indexes=(
            Index("upload_sha256_idx", "(sha256)"),
            Index("upload_orphaned_idx", "(orphaned) WHERE orphaned IS NOT NULL", since=1),
        ),
    ),
    Table(
        "user_upload",
        (
            Column("id", "uuid", null=False, default="gen_random_uuid()"),
            Column("user", "uuid", references='"user" (id) ON DELETE CASCADE'),
            # RESTRICT, not PWB's CASCADE: an upload row still referenced must never be deleted under a user.
            Column("upload", "uuid", null=False, references="upload (id) ON DELETE RESTRICT"),
            Column("filename", "varchar", null=False),
            Column("created", "timestamptz", null=False, default="now()"),
        ),
        # The same user uploading the same bytes under the same name gets the same row back.
        unique=(("user", "upload", "filename"),),
        indexes=(
            Index("user_upload_user_created_idx", '("user", created DESC, id DESC)'),
            Index("user_upload_upload_idx", "(upload)"),
        ),
    ),
    Table(
        "user_token",
        (
            # sha256 of the bearer token: the token itself is never stored.
            Column("token_hash", "varchar", null=False),
            Column("user", "uuid", null=False, references='"user" (id) ON DELETE CASCADE'),
            Column("created", "timestamptz", null=False, default="now()"),
        ),
        primary_key=("token_hash",),
        indexes=(Index("user_token_user_idx", '("user")'),),
    ),
    Table(
        "jobs",
        (
            Column("id", "uuid", null=False, default="gen_random_uuid()"),
            Column("kind", "varchar", null=False),
            Column("payload", "jsonb", null=False, default="'{}'::jsonb"),
            Column("user", "uuid", references='"user" (id) ON DELETE CASCADE'),
            Column("state", "varchar", null=False, default="'queued'"),
            Column("attempts", "integer", null=False, default="0"),
            Column("max_attempts", "integer", null=False, default="5"),
            Column("run_after", "timestamptz", null=False, default="now()"),
            Column("worker", "varchar"),  # who holds a running job
            Column("heartbeat", "timestamptz"),
            Column("progress", "bigint", null=False, default="0"),
            Column("result", "jsonb"),
            Column("error", "varchar"),
            Column("created", "timestamptz", null=False, default="now()"),
            Column("updated", "timestamptz", null=False, default="now()"),
        ),
        checks=("state IN ('queued', 'running', 'done', 'failed')",),
        indexes=(
            Index("jobs_queued_idx", "(run_after) WHERE state = 'queued'", since=1),
            Index("jobs_running_idx", "(heartbeat) WHERE state = 'running'", since=1),
        ),
        since=1,
    ),
    Table(
        "drs_stats",
        (
            # A single row, refreshed by the `stats` job: service-info reads it instead of counting 10M rows.
            Column("id", "boolean", null=False, default="true"),
            Column("object_count", "bigint", null=False),
            Column("total_size", "bigint", null=False),
            Column("updated", "timestamptz", null=False, default="now()"),
        ),
        checks=("id",),
        since=2,
    ),
    Table(
        "schedule",
        (
            Column("name", "varchar", null=False),
            Column("next_run", "timestamptz", null=False),
        ),
        primary_key=("name",),
        since=1,
    ),
)

# PWB's columns first; drsbox's appended, since a replaced view may only gain columns at the end.
UPLOAD_COMPLETE = (
    "user_upload.id",
    'user_upload."user"',
    "upload.url",
    "upload.sha256",
    "upload.size",
    "user_upload.filename",
    "user_upload.created",
    "upload.md5",
    "user_upload.upload",
)


def upload_complete(*columns: str) -> str:
    listed = ",\n".join(f"    {column}" for column in columns)
    return f"SELECT\n{listed}\nFROM user_upload\nJOIN upload ON user_upload.upload = upload.id"


VIEWS: tuple[View, ...] = (
    View("user_upload_complete", upload_complete(*UPLOAD_COMPLETE)),
    View("user_upload_complete", upload_complete(*UPLOAD_COMPLETE, "upload.corrupt"), since=1),
)

VERSIONS: tuple[str, ...] = ("00", "01", "02")

SEED: tuple[str, ...] = (
    f"INSERT INTO \"user\" (id, name, email) VALUES ('{SERVICE_USER_ID}', 'Service', '') ON CONFLICT DO NOTHING;",
)
