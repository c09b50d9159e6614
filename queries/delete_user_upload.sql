-- name: delete_user_upload :one
-- Deletes one of a user's uploads and returns it, or nothing when the id is not theirs.
DELETE FROM user_upload
WHERE id = $1::uuid AND "user" = $2::uuid
RETURNING id, "user", upload, filename, created;
