//! The audit log: entries come back as recorded, filters select, pages never skip or
//! repeat an entry (even many of the same millisecond), and the prune is by age.

use switchyard_core::AuditId;
use switchyard_core::audit::{
    ActionFilter, Actor, AuditAction, AuditEntry, AuditOutcome, AuditQuery, TargetFilter,
    TargetKind,
};

use super::*;

fn entry(at: Timestamp, actor: Actor, action: AuditAction) -> AuditEntry {
    let mut e = AuditEntry::new(actor, action);
    e.at = at;
    e
}

fn query(limit: u32) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

async fn ids(store: &SharedStore, q: AuditQuery) -> Vec<AuditId> {
    store
        .list_audit(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

pub async fn audit_log_filters_pages_and_prunes(store: SharedStore) {
    let now = Timestamp::now();
    let admin = UserId::new();
    let key = ApiKeyId::new();
    let by_admin = Actor {
        name: "admin@example.com".into(),
        user_id: Some(admin),
        api_key_id: None,
        api_key_name: None,
    };
    let by_key = Actor {
        api_key_id: Some(key),
        api_key_name: Some("deploy".into()),
        ..by_admin.clone()
    };

    // Everything an entry holds comes back, odd text included.
    let odd = "nul\u{0} escape\u{FFFF}0 é 日本 'quote\" \\ %_";
    let full = entry(
        now.minus_ms(10_000),
        by_key.clone(),
        AuditAction::AgentUpdate,
    )
    .target(TargetKind::Agent, odd)
    .origin(&switchyard_core::audit::Origin {
        request_id: Some("req-1".into()),
        client_addr: Some("2001:db8::1".into()),
    })
    .outcome(AuditOutcome::Denied, Some(odd))
    .detail(json!({"k\u{0}": [odd, 1, null, {"n": true}]}));
    store.insert_audit(&full).await.unwrap();
    let failed_login = entry(
        now.minus_ms(9_000),
        Actor::named(odd),
        AuditAction::AuthLoginFailed,
    )
    .outcome(AuditOutcome::Failure, Some("wrong email or password"));
    store.insert_audit(&failed_login).await.unwrap();
    let login = entry(
        now.minus_ms(8_000),
        by_admin.clone(),
        AuditAction::AuthLogin,
    )
    .target(TargetKind::Session, "s-1");
    store.insert_audit(&login).await.unwrap();
    let by_cli = entry(now.minus_ms(7_000), Actor::cli(), AuditAction::ApiKeyCreate)
        .target(TargetKind::ApiKey, key);
    store.insert_audit(&by_cli).await.unwrap();
    let old = entry(
        now.minus_ms(400 * 86_400_000),
        Actor::system(),
        AuditAction::SessionRevoke,
    );
    store.insert_audit(&old).await.unwrap();

    let all = store.list_audit(&query(50)).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        [by_cli.id, login.id, failed_login.id, full.id, old.id],
        "newest first"
    );
    assert_eq!(all[3], full, "every field comes back as recorded");
    assert_eq!(all[2], failed_login);
    assert!(
        store.insert_audit(&full).await.is_err(),
        "an id is recorded once"
    );

    // Actor: a user id (sessions and keys), a key id, a name.
    let by = |actor: &str| AuditQuery {
        actor: Some(actor.to_owned()),
        ..query(50)
    };
    assert_eq!(
        ids(&store, by(&admin.to_string())).await,
        [login.id, full.id]
    );
    assert_eq!(ids(&store, by(&key.to_string())).await, [full.id]);
    assert_eq!(ids(&store, by("cli")).await, [by_cli.id]);
    assert_eq!(ids(&store, by(odd)).await, [failed_login.id]);
    assert_eq!(ids(&store, by("nobody")).await, []);

    // Action: exact, or a family (`api_key.` holds `_`, which must not be a wildcard).
    let action = |f: &str| AuditQuery {
        action: Some(ActionFilter::parse(f).unwrap()),
        ..query(50)
    };
    assert_eq!(ids(&store, action("auth.login")).await, [login.id]);
    assert_eq!(
        ids(&store, action("auth.")).await,
        [login.id, failed_login.id]
    );
    assert_eq!(ids(&store, action("api_key.")).await, [by_cli.id]);
    assert_eq!(ids(&store, action("sso.")).await, []);

    // Target: a kind, or one thing.
    let target = |f: &str| AuditQuery {
        target: Some(TargetFilter::parse(f).unwrap()),
        ..query(50)
    };
    assert_eq!(ids(&store, target("agent")).await, [full.id]);
    assert_eq!(
        ids(&store, target(&format!("agent:{odd}"))).await,
        [full.id]
    );
    assert_eq!(ids(&store, target("agent:other")).await, []);
    assert_eq!(
        ids(&store, target(&format!("api_key:{key}"))).await,
        [by_cli.id]
    );

    // Time: since is inclusive, until exclusive.
    let window = AuditQuery {
        since: Some(failed_login.at),
        until: Some(by_cli.at),
        ..query(50)
    };
    assert_eq!(ids(&store, window).await, [login.id, failed_login.id]);
    let combined = AuditQuery {
        actor: Some(admin.to_string()),
        action: Some(ActionFilter::parse("agent.").unwrap()),
        since: Some(now.minus_ms(60_000)),
        ..query(50)
    };
    assert_eq!(ids(&store, combined).await, [full.id]);

    // Pages through many entries of one millisecond: each exactly once, in id order.
    let same_ms = now.minus_ms(5_000);
    let mut burst = Vec::new();
    for i in 0..25 {
        let e =
            entry(same_ms, by_admin.clone(), AuditAction::TaskCancel).target(TargetKind::Task, i);
        store.insert_audit(&e).await.unwrap();
        burst.push(e.id);
    }
    burst.sort();
    burst.reverse();
    let mut paged: Vec<AuditId> = Vec::new();
    let mut cursor = None;
    loop {
        let page = ids(
            &store,
            AuditQuery {
                action: Some(ActionFilter::Exact(AuditAction::TaskCancel)),
                after: cursor,
                ..query(4)
            },
        )
        .await;
        assert!(page.len() <= 4);
        paged.extend(&page);
        if page.len() < 4 {
            break;
        }
        cursor = page.last().copied();
    }
    assert_eq!(paged, burst, "no entry skipped or repeated");
    // A cursor in the middle of the list continues after it, across timestamps.
    let after_login = ids(
        &store,
        AuditQuery {
            after: Some(login.id),
            ..query(50)
        },
    )
    .await;
    assert_eq!(after_login, [failed_login.id, full.id, old.id]);

    // Retention: only entries older than the cut-off go.
    let pruned = store
        .prune_audit(now.minus_ms(365 * 86_400_000))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let left = ids(&store, query(100)).await;
    assert_eq!(left.len(), 4 + 25);
    assert!(!left.contains(&old.id));
    assert_eq!(store.prune_audit(now.minus_ms(3_600_000)).await.unwrap(), 0);
}
