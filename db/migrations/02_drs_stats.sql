-- Hand-written (never edit once applied): cached DRS service statistics (objectCount, totalObjectSize),
-- refreshed by the `stats` job. codegen/schema.py declares the same (since=2).
-- migrate:up
CREATE TABLE "drs_stats" (
    "id" boolean NOT NULL DEFAULT true,
    "object_count" bigint NOT NULL,
    "total_size" bigint NOT NULL,
    "updated" timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY ("id"),
    CONSTRAINT "drs_stats_check1" CHECK (id)
);

-- migrate:down
DROP TABLE IF EXISTS "drs_stats";
