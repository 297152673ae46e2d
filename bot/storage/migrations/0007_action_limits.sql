-- Per-action signal limits set by the POH (e.g. this patient's blood pressure above 160/100),
-- on top of the practice's signal rules. JSON: {"above": [160, 100], "below": [90, 50]}.
ALTER TABLE actions ADD COLUMN limits_json TEXT;
