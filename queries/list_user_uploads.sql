-- name: list_user_uploads :many
-- A user's uploads, newest first, after the (created, id) cursor when one is given, at most $4 (null: all).
SELECT id, "user", url, sha256, size, filename, created, md5, upload, corrupt
FROM user_upload_complete
WHERE "user" = $1::uuid
    AND ($2::timestamptz IS NULL OR (created, id) < ($2::timestamptz, $3::uuid))
ORDER BY created DESC, id DESC
LIMIT $4::bigint;
