-- point_latest is rewritten many times a second (one row per point that reported). Leaving
-- half of each page free lets PostgreSQL update a row in place (a HOT update: no new index
-- entry) and prune old versions page by page; at 100,000 points the table otherwise bloated to
-- 20 times its size and each upsert ran at a third of the speed. Pages written from now on get
-- the room; autovacuum visits the table early.
ALTER TABLE point_latest SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02,
                              autovacuum_vacuum_insert_scale_factor = 0.02);
