-- Web app hardening (issue 13): the real client address in the audit log (behind a trusted proxy:
-- the right-most untrusted X-Forwarded-For hop), and enrolment links. An account is made without a
-- password (password_hash '' = not set yet); its holder opens a one-time link, sets their own
-- password and links an authenticator app. Only the sha256 of a link's token is stored.
ALTER TABLE audit_log ADD COLUMN client_address TEXT;

CREATE TABLE web_enrolments (
    token_hash      TEXT PRIMARY KEY,                      -- sha256 of the token in the link
    account_id      INTEGER NOT NULL REFERENCES web_accounts(id),
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT                                   -- set once: a link works one time
);
CREATE INDEX web_enrolments_account ON web_enrolments(account_id);
