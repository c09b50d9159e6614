"""The database schema, declared once. `python -m codegen sql` renders it into db/migrations/00_init.sql.

Names and columns follow the Playbook Workflow Builder (`user`, `upload`, `user_upload`, the view
`user_upload_complete`) so that PWB clients and queries keep working; drsbox adds md5, unique keys that
make uploads idempotent under concurrency, and hashed API tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVICE_USER_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    null: bool = True
    default: str | None = None
    references: str | None = None  # "table(column) ON DELETE ..."


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ("id",)
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: dict[str, str] = field(default_factory=dict)  # name -> "(columns)"


@dataclass(frozen=True)
class View:
    name: str
    query: str


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
        indexes={"user_email_idx": "(email)"},
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
        ),
        unique=(("url",),),
        indexes={"upload_sha256_idx": "(sha256)"},
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
        indexes={
            "user_upload_user_created_idx": '("user", created DESC, id DESC)',
            "user_upload_upload_idx": "(upload)",
        },
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
        indexes={"user_token_user_idx": '("user")'},
    ),
)

VIEWS: tuple[View, ...] = (
    View(
        "user_upload_complete",
        """SELECT
    user_upload.id,
    user_upload."user",
    upload.url,
    upload.sha256,
    upload.size,
    user_upload.filename,
    user_upload.created,
    upload.md5,
    user_upload.upload
FROM user_upload
JOIN upload ON user_upload.upload = upload.id""",
    ),
)

SEED: tuple[str, ...] = (
    f"INSERT INTO \"user\" (id, name, email) VALUES ('{SERVICE_USER_ID}', 'Service', '') ON CONFLICT DO NOTHING;",
)
