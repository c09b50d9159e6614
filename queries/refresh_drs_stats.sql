-- name: refresh_drs_stats :exec
-- Recounts the DRS objects and the bytes of the distinct files behind them (run by the `stats` job).
INSERT INTO drs_stats (id, object_count, total_size, updated)
SELECT true,
    (SELECT count(*) FROM user_upload),
    (SELECT coalesce(sum(size), 0) FROM upload WHERE EXISTS (SELECT 1 FROM user_upload WHERE user_upload.upload = upload.id)),
    now()
ON CONFLICT (id) DO UPDATE
SET object_count = EXCLUDED.object_count, total_size = EXCLUDED.total_size, updated = EXCLUDED.updated;
