-- Voorgesprek schema, version 1. Times are UTC ISO-8601 strings.

CREATE TABLE practices (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE clinicians (
    id                INTEGER PRIMARY KEY,
    practice_id       INTEGER NOT NULL REFERENCES practices(id),
    display_name      TEXT NOT NULL,
    telegram_user_id  INTEGER UNIQUE,
    telegram_chat_id  INTEGER,
    active            INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL
);

CREATE TABLE patients (
    id                INTEGER PRIMARY KEY,
    practice_id       INTEGER NOT NULL REFERENCES practices(id),
    display_name      TEXT,                       -- for the POH only, never sent to Telegram
    telegram_user_id  INTEGER UNIQUE,
    telegram_chat_id  INTEGER,
    status            TEXT NOT NULL DEFAULT 'invited'
                      CHECK (status IN ('invited', 'active', 'stopped', 'erased')),
    created_at        TEXT NOT NULL,
    erased_at         TEXT
);

CREATE TABLE consults (
    id            INTEGER PRIMARY KEY,
    practice_id   INTEGER NOT NULL REFERENCES practices(id),
    patient_id    INTEGER NOT NULL REFERENCES patients(id),
    clinician_id  INTEGER REFERENCES clinicians(id),
    scheduled_at  TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'invited'
                  CHECK (status IN ('invited', 'in_progress', 'ready', 'declined', 'erased')),
    created_at    TEXT NOT NULL,
    completed_at  TEXT
);
CREATE INDEX consults_practice_time ON consults(practice_id, scheduled_at);
CREATE INDEX consults_patient ON consults(patient_id);

CREATE TABLE invites (
    id            INTEGER PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,           -- sha256 of the token; the token itself is never stored
    kind          TEXT NOT NULL CHECK (kind IN ('patient', 'clinician')),
    practice_id   INTEGER NOT NULL REFERENCES practices(id),
    patient_id    INTEGER REFERENCES patients(id),
    clinician_id  INTEGER REFERENCES clinicians(id),
    consult_id    INTEGER REFERENCES consults(id),
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE consents (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER NOT NULL REFERENCES patients(id),
    consult_id  INTEGER REFERENCES consults(id),
    version     TEXT NOT NULL,
    given       INTEGER NOT NULL,
    at          TEXT NOT NULL
);

-- The live conversation of a patient: restart-safe state of the flow engine.
CREATE TABLE conversations (
    patient_id    INTEGER PRIMARY KEY REFERENCES patients(id),
    consult_id    INTEGER NOT NULL REFERENCES consults(id),
    flow          TEXT NOT NULL,
    state_json    TEXT NOT NULL,
    seq           INTEGER NOT NULL DEFAULT 0,     -- question number of the current state
    prompted_seq  INTEGER NOT NULL DEFAULT 0,     -- last question number known to be delivered
    paused        INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL
);

CREATE TABLE answers (
    consult_id  INTEGER NOT NULL REFERENCES consults(id),
    key         TEXT NOT NULL,
    value_json  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (consult_id, key)
);

-- Telegram updates already applied: a redelivered update after a crash is skipped.
CREATE TABLE processed_updates (
    update_id     INTEGER PRIMARY KEY,
    processed_at  TEXT NOT NULL
);

-- Durable outbox: every message that must reach someone outside a direct reply.
CREATE TABLE outbox (
    id                   INTEGER PRIMARY KEY,
    kind                 TEXT NOT NULL,
    chat_id              INTEGER NOT NULL,
    payload_json         TEXT NOT NULL,
    due_at               TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    telegram_message_id  INTEGER,
    created_at           TEXT NOT NULL,
    sent_at              TEXT,
    patient_id           INTEGER REFERENCES patients(id),
    consult_id           INTEGER REFERENCES consults(id)
);
CREATE INDEX outbox_due ON outbox(status, due_at);
