-- Red flags noticed in what a patient wrote: the flag and the route given, never the text.
CREATE TABLE safety_events (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER REFERENCES patients(id),
    consult_id  INTEGER REFERENCES consults(id),
    flag        TEXT NOT NULL,
    route       TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX safety_events_consult ON safety_events(consult_id);
