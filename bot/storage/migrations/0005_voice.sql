-- Low literacy and voice. NULL means "not asked yet": the intake then asks.
ALTER TABLE patients ADD COLUMN read_aloud INTEGER;
ALTER TABLE patients ADD COLUMN simple_mode INTEGER;

-- Voice answers, kept for the POH with the same protection as typed answers (erased by /wis).
CREATE TABLE voice_notes (
    id           INTEGER PRIMARY KEY,
    patient_id   INTEGER NOT NULL REFERENCES patients(id),
    consult_id   INTEGER REFERENCES consults(id),
    duration_s   INTEGER NOT NULL,
    audio        BLOB NOT NULL,
    transcript   TEXT,                        -- only when a speech-to-text backend is configured
    status       TEXT NOT NULL DEFAULT 'kept'
                 CHECK (status IN ('kept', 'pending', 'confirmed', 'rejected')),
    created_at   TEXT NOT NULL
);
CREATE INDEX voice_notes_patient ON voice_notes(patient_id);
