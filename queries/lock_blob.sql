-- name: lock_blob :exec
-- Within a transaction: waits until no upload of this blob is in progress and keeps new ones out until commit.
SELECT pg_advisory_xact_lock(hashtextextended($1, 0));
