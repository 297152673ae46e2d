-- The clinician web app: accounts with a password (argon2) and a second factor (TOTP),
-- server-side sessions, and the NEN 7513 audit log of every access to patient data.
CREATE TABLE web_accounts (
    id              INTEGER PRIMARY KEY,
    practice_id     INTEGER NOT NULL REFERENCES practices(id),
    clinician_id    INTEGER REFERENCES clinicians(id),     -- the same person in Telegram, if linked
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    role            TEXT NOT NULL DEFAULT 'poh' CHECK (role IN ('poh', 'admin')),
    password_hash   TEXT NOT NULL,
    totp_secret     TEXT,                                  -- set at enrolment
    totp_confirmed  INTEGER NOT NULL DEFAULT 0,
    totp_last_step  INTEGER NOT NULL DEFAULT 0,            -- a code is accepted once
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL
);

CREATE TABLE web_sessions (
    token_hash      TEXT PRIMARY KEY,                      -- sha256 of the cookie value
    account_id      INTEGER NOT NULL REFERENCES web_accounts(id),
    csrf_token      TEXT NOT NULL,
    second_factor   INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);
CREATE INDEX web_sessions_account ON web_sessions(account_id);

-- Append-only: no row is ever changed or removed (enforced below).
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    event           TEXT NOT NULL,          -- e.g. login, view_agenda, export_fhir, change_plan
    account_id      INTEGER,
    user_name       TEXT NOT NULL,          -- who did it
    on_behalf_of    TEXT,                   -- for whom (the responsible clinician), when not the user
    practice_id     INTEGER,
    patient_id      INTEGER,                -- whose data (internal id; kept after erasure)
    consult_id      INTEGER,
    detail          TEXT
);
CREATE INDEX audit_patient ON audit_log(patient_id, at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
