//! Users, API keys and sessions.

use super::*;

pub async fn users_and_api_keys(store: SharedStore) {
    let user = NewUser {
        id: UserId::new(),
        email: "ops@example.com".into(),
        password_hash: "$argon2id$fake".into(),
        role: Role::Operator,
        created_at: t0(),
    };
    let created = store.create_user(user.clone()).await.unwrap();
    assert_eq!(
        (created.email.as_str(), created.role, created.disabled),
        ("ops@example.com", Role::Operator, false)
    );
    let dup = store
        .create_user(NewUser {
            id: UserId::new(),
            ..user.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::EmailTaken);
    let (found, hash) = store
        .user_by_email("ops@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (user.id, "$argon2id$fake"));
    assert_eq!(store.count_users().await.unwrap(), 1);
    let patched = store
        .update_user(
            user.id,
            UserPatch {
                role: Some(Role::Admin),
                disabled: Some(true),
                password_hash: None,
            },
            t0().plus_ms(1),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((patched.role, patched.disabled), (Role::Admin, true));
    assert_eq!(
        store
            .user_by_email("ops@example.com")
            .await
            .unwrap()
            .unwrap()
            .1,
        "$argon2id$fake"
    );
    assert!(
        store
            .update_user(UserId::new(), UserPatch::default(), t0())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_users().await.unwrap().len(), 1);

    let key = ApiKey {
        id: ApiKeyId::new(),
        user_id: user.id,
        name: "ci".into(),
        prefix: "sy_abcd".into(),
        scopes: vec![Scope::Submit, Scope::Read],
        created_at: t0(),
        expires_at: Some(t0().plus_ms(1_000)),
        revoked_at: None,
        last_used_at: None,
    };
    store
        .create_api_key(NewApiKey {
            key: key.clone(),
            secret_hash: "h1".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        store.api_key_by_hash("h1").await.unwrap(),
        Some(key.clone())
    );
    assert!(store.api_key_by_hash("h2").await.unwrap().is_none());
    store.touch_api_key(key.id, t0().plus_ms(5)).await.unwrap();
    assert_eq!(
        store.list_api_keys(Some(user.id)).await.unwrap()[0].last_used_at,
        Some(t0().plus_ms(5))
    );
    assert!(
        store
            .list_api_keys(Some(UserId::new()))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .revoke_api_key(key.id, Some(UserId::new()), t0())
            .await
            .unwrap(),
        "not someone else's key"
    );
    assert!(
        store
            .revoke_api_key(key.id, Some(user.id), t0().plus_ms(7))
            .await
            .unwrap()
    );
    assert!(
        !store.revoke_api_key(key.id, None, t0()).await.unwrap(),
        "already revoked"
    );
    assert_eq!(
        store
            .api_key_by_hash("h1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(t0().plus_ms(7))
    );
}

/// Single sign-on identities: found by (issuer, subject) only, each linked once, and
/// never confused with a local account of the same email.
pub async fn oidc_identities_find_users_by_subject(store: SharedStore) {
    let issuer = "https://login.example.com";
    let new_user = |email: &str| NewUser {
        id: UserId::new(),
        email: email.into(),
        password_hash: "!sso".into(),
        role: Role::Viewer,
        created_at: t0(),
    };
    assert!(
        store
            .user_by_oidc_subject(issuer, "sub-1")
            .await
            .unwrap()
            .is_none()
    );
    let created = store
        .create_oidc_user(new_user("sso@example.com"), issuer, "sub-1")
        .await
        .unwrap();
    assert_eq!(
        (created.email.as_str(), created.role, created.disabled),
        ("sso@example.com", Role::Viewer, false)
    );
    let found = store
        .user_by_oidc_subject(issuer, "sub-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, created.id);
    assert_eq!(found.created_at, t0());
    // The same subject at another issuer is someone else.
    assert!(
        store
            .user_by_oidc_subject("https://other.example.com", "sub-1")
            .await
            .unwrap()
            .is_none()
    );
    // One identity links one user.
    let twice = store
        .create_oidc_user(new_user("other@example.com"), issuer, "sub-1")
        .await
        .unwrap_err();
    assert_eq!(twice.code, ErrorCode::EmailTaken);
    // A local account with the email is not matched, and blocks provisioning.
    store
        .create_user(new_user("local@example.com"))
        .await
        .unwrap();
    assert!(
        store
            .user_by_oidc_subject(issuer, "local@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let taken = store
        .create_oidc_user(new_user("local@example.com"), issuer, "sub-2")
        .await
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::EmailTaken);
    // Local users have no identity: many NULLs under the unique index.
    store
        .create_user(new_user("local2@example.com"))
        .await
        .unwrap();
    let (user, hash) = store
        .user_by_email("sso@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.id, hash.as_str()), (created.id, "!sso"));
}

pub async fn sessions_rotate_and_expire(store: SharedStore) {
    use switchyard_core::SessionId;
    use switchyard_core::auth::{RefreshOutcome, Rotation, Session};
    let rotation =
        |presented: &'static str, new: &'static str, at: Timestamp, grace_ms: u64| Rotation {
            presented_hash: presented,
            new_hash: new,
            sealed_next: new,
            new_expiry: at.plus_ms(120_000),
            now: at,
            grace_ms,
        };
    let now = Timestamp::now();
    let user = UserId::new();
    let session = |created: Timestamp| Session {
        id: SessionId::new(),
        user_id: user,
        created_at: created,
        expires_at: now.plus_ms(60_000),
        last_refreshed_at: created,
        user_agent: Some("conformance".into()),
        ip: None,
        refresh_hash: "h0".into(),
        used_hashes: vec![],
        sealed_next: String::new(),
    };
    let a = session(now.minus_ms(10));
    let b = session(now);
    store.put_session(&a).await.unwrap();
    store.put_session(&b).await.unwrap();
    store.put_session(&a).await.expect("putting again replaces");
    assert_eq!(store.get_session(a.id, now).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.list_sessions(user, now).await.unwrap(),
        vec![a.clone(), b.clone()],
        "oldest first"
    );
    assert_eq!(
        store.get_session(a.id, now.plus_ms(60_000)).await.unwrap(),
        None,
        "expired"
    );

    let later = now.plus_ms(120_000);
    match store
        .rotate_refresh(a.id, &rotation("h0", "h1", now, 0))
        .await
        .unwrap()
    {
        RefreshOutcome::Rotated(r) => {
            assert_eq!((r.refresh_hash.as_str(), r.expires_at), ("h1", later));
            assert_eq!(r.used_hashes, vec!["h0".to_owned()]);
            assert_eq!(store.get_session(a.id, now).await.unwrap(), Some(r));
        }
        other => panic!("expected rotation, got {other:?}"),
    }
    assert_eq!(
        store
            .rotate_refresh(a.id, &rotation("never-issued", "hx", now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(
        store.get_session(a.id, now).await.unwrap().is_some(),
        "a bad guess does not revoke"
    );
    assert_eq!(
        store
            .rotate_refresh(a.id, &rotation("h0", "h2", now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Reused
    );
    assert_eq!(
        store.get_session(a.id, now).await.unwrap(),
        None,
        "reuse revokes the session"
    );
    assert_eq!(
        store
            .rotate_refresh(SessionId::new(), &rotation("h0", "h1", now, 0))
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );

    // Concurrent rotations with the same token: exactly one wins; within the grace
    // window the others get the winner's (sealed) token and the session lives.
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let id = b.id;
        handles.push(tokio::spawn(async move {
            let new = format!("n{i}");
            let r = Rotation {
                presented_hash: "h0",
                new_hash: &new,
                sealed_next: &new,
                new_expiry: later,
                now,
                grace_ms: 30_000,
            };
            store.rotate_refresh(id, &r).await.unwrap()
        }));
    }
    let (mut rotated, mut repeated) = (Vec::new(), Vec::new());
    for h in handles {
        match h.await.unwrap() {
            RefreshOutcome::Rotated(s) => rotated.push(s),
            RefreshOutcome::Repeated(s) => repeated.push(s),
            other => panic!("within the grace window: {other:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "one rotation per token");
    assert_eq!(repeated.len(), 7);
    let winner = &rotated[0].refresh_hash;
    assert!(
        repeated
            .iter()
            .all(|s| &s.refresh_hash == winner && &s.sealed_next == winner),
        "repeats get the winner's token"
    );
    assert_eq!(
        store
            .get_session(b.id, now)
            .await
            .unwrap()
            .map(|s| s.refresh_hash),
        Some(winner.clone()),
        "the session lives on the winner's token"
    );
    // The same token again after the window, or a token two rotations old, is reuse.
    let c = session(now);
    store.put_session(&c).await.unwrap();
    let r = store
        .rotate_refresh(c.id, &rotation("h0", "h1", now, 10_000))
        .await
        .unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated(_)), "{r:?}");
    let r = store
        .rotate_refresh(c.id, &rotation("h0", "hx", now.plus_ms(9_000), 10_000))
        .await
        .unwrap();
    assert!(
        matches!(&r, RefreshOutcome::Repeated(s)
            if s.refresh_hash == "h1" && s.sealed_next == "h1"),
        "{r:?}"
    );
    let r = store
        .rotate_refresh(c.id, &rotation("h1", "h2", now.plus_ms(9_500), 10_000))
        .await
        .unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated(_)), "{r:?}");
    assert_eq!(
        store
            .rotate_refresh(c.id, &rotation("h0", "hx", now.plus_ms(9_600), 10_000))
            .await
            .unwrap(),
        RefreshOutcome::Reused,
        "two rotations old"
    );
    assert_eq!(store.get_session(c.id, now).await.unwrap(), None);
    let d = session(now);
    store.put_session(&d).await.unwrap();
    let r = store
        .rotate_refresh(d.id, &rotation("h0", "h1", now, 10_000))
        .await
        .unwrap();
    assert!(matches!(r, RefreshOutcome::Rotated(_)), "{r:?}");
    assert_eq!(
        store
            .rotate_refresh(d.id, &rotation("h0", "hx", now.plus_ms(10_000), 10_000))
            .await
            .unwrap(),
        RefreshOutcome::Reused,
        "after the window"
    );
    assert_eq!(store.get_session(d.id, now).await.unwrap(), None);

    assert!(
        store.delete_session(b.id).await.unwrap()
            || store.get_session(b.id, now).await.unwrap().is_none()
    );
    assert!(!store.delete_session(b.id).await.unwrap());
    let mut stale = session(now.minus_ms(100_000));
    stale.expires_at = now.minus_ms(1);
    store.put_session(&stale).await.unwrap();
    assert_eq!(store.prune_sessions(now).await.unwrap(), 1);
    assert_eq!(
        store
            .list_sessions(user, now.minus_ms(50_000))
            .await
            .unwrap(),
        vec![]
    );
}
