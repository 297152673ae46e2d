-- Reminders: one row per planned moment of an action (kind 'action') or weekly look back at a
-- goal (kind 'review'). The row keeps the patient's answer; the message itself goes through the
-- outbox (payload: reminder id), so sending stays exactly-once per recorded send.
CREATE TABLE reminders (
    id            INTEGER PRIMARY KEY,
    patient_id    INTEGER NOT NULL REFERENCES patients(id),
    goal_id       INTEGER NOT NULL REFERENCES goals(id),
    action_id     INTEGER REFERENCES actions(id),
    kind          TEXT NOT NULL CHECK (kind IN ('action', 'review')),
    due_at        TEXT NOT NULL,                 -- the planned moment, UTC
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'later', 'done', 'not_done', 'missed', 'cancelled')),
    later_count   INTEGER NOT NULL DEFAULT 0,
    value_json    TEXT,                          -- a measurement, or how the week went
    barrier       TEXT,                          -- what got in the way (a chip id)
    note          TEXT,                          -- the patient's own words, for the POH only
    awaiting      TEXT CHECK (awaiting IN ('value', 'note')),  -- the bot waits for typed text
    answered_at   TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (action_id, due_at)
);
CREATE INDEX reminders_patient ON reminders(patient_id, due_at);
CREATE INDEX reminders_goal ON reminders(goal_id, due_at);
CREATE INDEX reminders_awaiting ON reminders(patient_id) WHERE awaiting IS NOT NULL;

-- The plan in the patient's own words (teach-back), and the next weekly look back.
ALTER TABLE goals ADD COLUMN teachback TEXT;
ALTER TABLE goals ADD COLUMN next_review_at TEXT;
CREATE INDEX goals_review ON goals(next_review_at) WHERE ended_at IS NULL AND next_review_at IS NOT NULL;

-- Per-patient reminder settings; blocked_at is set when Telegram says the patient blocked the bot.
ALTER TABLE patients ADD COLUMN discreet INTEGER NOT NULL DEFAULT 0;
ALTER TABLE patients ADD COLUMN quiet_start TEXT;   -- local HH:MM; NULL = practice default
ALTER TABLE patients ADD COLUMN quiet_end TEXT;
ALTER TABLE patients ADD COLUMN blocked_at TEXT;
