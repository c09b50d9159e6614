-- name: delete_orphaned_upload :one
-- Deletes an upload row if it is still orphaned and unreferenced (run under lock_blob); nothing otherwise.
DELETE FROM upload
WHERE id = $1::uuid
    AND orphaned IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM user_upload WHERE user_upload.upload = upload.id)
RETURNING id, url, sha256;
