-- The durable inbox: each update from Telegram is stored before Telegram is told it arrived.
-- payload_json holds the raw update until it is handled (then it is cleared: patient words are
-- kept no longer than needed); failed rows keep only why (never the content).
CREATE TABLE inbox (
    update_id INTEGER PRIMARY KEY,
    chat_key INTEGER,
    payload_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'handled', 'failed')),
    reason TEXT,
    received_at TEXT NOT NULL,
    handled_at TEXT
);
CREATE INDEX inbox_pending ON inbox(status, update_id);
