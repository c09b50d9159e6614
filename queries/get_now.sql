-- name: get_now :one
-- The database clock: a round trip that proves the database answers (readiness).
SELECT now() AS now;
