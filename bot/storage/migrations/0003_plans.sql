-- Individual care plan: plan -> goal -> action. Rows are never rewritten: a change ends the old
-- row (ended_at) and adds a new one that points back to it (replaces), so history is kept.
CREATE TABLE plans (
    id          INTEGER PRIMARY KEY,
    patient_id  INTEGER NOT NULL UNIQUE REFERENCES patients(id),
    created_at  TEXT NOT NULL
);

CREATE TABLE goals (
    id            INTEGER PRIMARY KEY,
    plan_id       INTEGER NOT NULL REFERENCES plans(id),
    text          TEXT NOT NULL,                 -- in the patient's words
    follow_up_on  TEXT,                          -- local date, YYYY-MM-DD
    author        TEXT NOT NULL,                 -- patient | clinician:<id> | cli
    created_at    TEXT NOT NULL,
    ended_at      TEXT,
    replaces      INTEGER REFERENCES goals(id)
);
CREATE INDEX goals_plan ON goals(plan_id);

CREATE TABLE actions (
    id             INTEGER PRIMARY KEY,
    goal_id        INTEGER NOT NULL REFERENCES goals(id),
    what           TEXT NOT NULL,
    schedule_json  TEXT NOT NULL,
    measurement    TEXT,                         -- blood_pressure | weight | steps | pain | glucose
    author         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    ended_at       TEXT,
    replaces       INTEGER REFERENCES actions(id),
    next_due_at    TEXT                          -- UTC; NULL when nothing is due any more
);
CREATE INDEX actions_goal ON actions(goal_id);
-- Finding due reminders is an index range scan, not a table scan.
CREATE INDEX actions_due ON actions(next_due_at) WHERE ended_at IS NULL AND next_due_at IS NOT NULL;
