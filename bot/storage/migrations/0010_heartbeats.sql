-- Signs of life for `python -m bot health` and GET /healthz: the scheduler's last finished tick
-- ('scheduler') and the last health check's test write ('health'). Times are wall-clock UTC.
CREATE TABLE heartbeats (
    name TEXT PRIMARY KEY,
    at   TEXT NOT NULL
);
