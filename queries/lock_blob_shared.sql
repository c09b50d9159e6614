-- name: lock_blob_shared :exec
-- Within a transaction: lets uploaders of the same blob in, keeps garbage collection of it out until commit.
SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0));
