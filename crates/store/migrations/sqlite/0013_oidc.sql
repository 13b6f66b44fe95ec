-- Single sign-on: a user provisioned by an OpenID provider is found by the provider's
-- issuer and subject, never by email alone.
ALTER TABLE users ADD COLUMN oidc_issuer TEXT;
ALTER TABLE users ADD COLUMN oidc_subject TEXT;

CREATE UNIQUE INDEX users_oidc_identity ON users (oidc_issuer, oidc_subject);
