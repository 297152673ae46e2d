-- The "check" tier of the safety net: risk words without a clear statement get one direct yes/no
-- question. Kept: the kinds asked about and the answer, never the patient's words.
CREATE TABLE safety_checks (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER REFERENCES patients(id),
    consult_id  INTEGER REFERENCES consults(id),
    flags       TEXT NOT NULL,      -- kinds, comma-separated
    held_seq    INTEGER,            -- the question number the flow waits on, when the check paused it
    asked_at    TEXT NOT NULL,
    answer      TEXT,               -- 'yes' or 'no'; NULL while unanswered
    answered_at TEXT
);
CREATE INDEX safety_checks_consult ON safety_checks(consult_id);
CREATE INDEX safety_checks_patient ON safety_checks(patient_id);
