-- The read behind every uncached whoami (session_read.rs): a session by its token hash, with
-- its identity's row. The columns are in the order the decoding reads them (token_hash,
-- which the caller already has, is not read back). The file ends where each engine's
-- placeholder for the token hash goes; benches/session_lookup.rs times the same text.
SELECT s.id, s.identity_id, s.active, s.issued_at, s.authenticated_at, s.expires_at, s.aal,
    s.authentication_methods, s.devices, i.schema_id, i.state, i.state_changed_at, i.traits,
    i.metadata_public, i.metadata_admin, i.document, i.created_at, i.updated_at, i.external_id
FROM identa_sessions s JOIN identa_identities i ON i.id = s.identity_id
WHERE s.token_hash =
