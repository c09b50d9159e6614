-- name: insert_user_token :exec
-- Stores the sha256 of a new bearer token for a user.
INSERT INTO user_token (token_hash, "user")
VALUES ($1, $2::uuid);
