-- Retention (AVG storage limitation, issue 13): RETENTION_MONTHS after a patient's last activity
-- (bot/services/retention.py says what counts) their data is erased, unless a POH keeps them longer.
-- A hold's reason is the POH's own text: it is erased with the patient (bot/storage/people.py),
-- and never written to the audit log or the logs.
CREATE TABLE retention_holds (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER NOT NULL REFERENCES patients(id),
    until       TEXT NOT NULL,                         -- local date YYYY-MM-DD: kept until this day
    reason      TEXT NOT NULL,
    account_id  INTEGER REFERENCES web_accounts(id),   -- who decided (a web account)
    user_name   TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX retention_holds_patient ON retention_holds(patient_id, until);

-- The daily run (one row): the last local day it ran, the RETENTION_MONTHS it ran with, and since
-- when that value holds. Nobody is erased automatically before 30 days after `since`, so a practice
-- that switches retention on (or shortens it) sees the list before anything goes.
CREATE TABLE retention_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_day  TEXT NOT NULL,
    months    INTEGER NOT NULL,
    since     TEXT NOT NULL
);
