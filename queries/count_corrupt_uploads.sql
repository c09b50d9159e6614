-- name: count_corrupt_uploads :one
-- How many stored blobs failed their last integrity check.
SELECT count(*) AS count
FROM upload
WHERE corrupt;
