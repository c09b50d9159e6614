-- name: update_orphaned_uploads :exec
-- Garbage collection, first pass: stamps upload rows that no user_upload refers to (their grace period
-- starts) and clears the stamp of rows referred to again.
UPDATE upload
SET orphaned = CASE WHEN orphaned IS NULL THEN now() END
WHERE (orphaned IS NULL) = NOT EXISTS (SELECT 1 FROM user_upload WHERE user_upload.upload = upload.id);
