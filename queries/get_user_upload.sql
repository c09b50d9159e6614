-- name: get_user_upload :one
-- One of a user's uploads, or nothing when the id is not theirs.
SELECT id, "user", url, sha256, size, filename, created, md5, upload, corrupt
FROM user_upload_complete
WHERE id = $1::uuid AND "user" = $2::uuid;
