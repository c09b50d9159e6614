-- name: list_uploads_by_url :many
-- Which of these URLs have an upload row (garbage collection keeps the blobs behind them).
SELECT url
FROM upload
WHERE url = ANY($1::varchar[]);
