-- Tokens are deleted by age (auth::expire_tokens, every minute): find them without a scan.
CREATE INDEX tokens_by_age ON tokens (kind, created_at);
