-- Single sign-on: a user provisioned by an OpenID provider is found by the provider's
-- issuer and subject, never by email alone.
ALTER TABLE users ADD COLUMN oidc_issuer text;
ALTER TABLE users ADD COLUMN oidc_subject text;

CREATE UNIQUE INDEX users_oidc_identity ON users (oidc_issuer, oidc_subject);
