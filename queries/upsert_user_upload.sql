-- name: upsert_user_upload :one
-- Records a stored file for a user in one statement: the upload row (shared by equal bytes) and the
-- user's named row; a retry with the same user, bytes and filename returns the existing row.
WITH stored AS (
    INSERT INTO upload (url, sha256, size, md5)
    VALUES ($2, $3, $4::bigint, $5)
    ON CONFLICT (url) DO UPDATE SET md5 = COALESCE(upload.md5, EXCLUDED.md5), orphaned = NULL
    RETURNING id, url, sha256, size, md5, corrupt
), named AS (
    INSERT INTO user_upload ("user", upload, filename)
    SELECT $1::uuid, stored.id, $6 FROM stored
    ON CONFLICT ("user", upload, filename) DO UPDATE SET filename = EXCLUDED.filename
    RETURNING id, "user", upload, filename, created
)
SELECT named.id, named."user", stored.url, stored.sha256, stored.size, named.filename, named.created,
    stored.md5, named.upload, stored.corrupt
FROM named
JOIN stored ON stored.id = named.upload;
