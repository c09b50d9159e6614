-- name: get_user_by_token :one
-- The user a bearer token (given as its sha256) belongs to.
SELECT user_token."user" AS id, user_token.token_hash
FROM user_token
WHERE user_token.token_hash = $1;
