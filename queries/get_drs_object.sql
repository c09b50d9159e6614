-- name: get_drs_object :one
-- The upload behind a DRS object id, whoever owns it.
SELECT id, "user", url, sha256, size, filename, created, md5, upload, corrupt
FROM user_upload_complete
WHERE id = $1::uuid;
