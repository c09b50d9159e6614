-- name: claim_schedule :one
-- The named periodic task when it is due, pushing its next run $2 seconds ahead: one caller wins per interval.
INSERT INTO schedule (name, next_run)
VALUES ($1, now() + make_interval(secs => $2::double precision))
ON CONFLICT (name) DO UPDATE SET next_run = EXCLUDED.next_run
WHERE schedule.next_run <= now()
RETURNING name;
