-- name: upsert_user :one
-- The id of the user with this username, created if it does not exist yet.
INSERT INTO "user" (username, name)
VALUES ($1, $1)
ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username
RETURNING id;
