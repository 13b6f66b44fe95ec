//! Metric rollups, alerts and reports.

use super::*;

fn point(metric: &str, agent: &str, bucket: i32, value: f64) -> MetricPoint {
    MetricPoint {
        metric: metric.into(),
        agent: agent.into(),
        bucket,
        value,
    }
}

pub async fn metric_rollups_add_and_downsample(store: SharedStore) {
    use switchyard_core::monitoring::series;
    let hour = Timestamp::from_millis(1_800_000_000_000 / HOUR_MS * HOUR_MS);
    let m1 = hour.plus_ms(60_000);
    let m2 = hour.plus_ms(120_000);
    // Two processes add their deltas to the same minute: the row holds the sum.
    for _ in 0..2 {
        store
            .add_metric_points(
                m1,
                &[
                    point(series::TASKS_SUBMITTED, "echo", -1, 3.0),
                    point(series::LATENCY_E2E, "echo", 2, 5.0),
                ],
            )
            .await
            .unwrap();
    }
    store
        .add_metric_points(m2, &[point(series::TASKS_SUBMITTED, "echo", -1, 4.0)])
        .await
        .unwrap();
    // Gauges: the latest sample of a minute wins.
    store
        .set_metric_gauges(m1, &[point(series::QUEUE_READY, "echo", -1, 7.0)])
        .await
        .unwrap();
    store
        .set_metric_gauges(m1, &[point(series::QUEUE_READY, "echo", -1, 2.0)])
        .await
        .unwrap();
    store
        .set_metric_gauges(m2, &[point(series::QUEUE_READY, "echo", -1, 5.0)])
        .await
        .unwrap();
    let query = |resolution_s, agent: Option<&str>| MetricRowQuery {
        metrics: vec![
            series::TASKS_SUBMITTED.into(),
            series::LATENCY_E2E.into(),
            series::QUEUE_READY.into(),
        ],
        agent: agent.map(str::to_owned),
        from: hour,
        to: hour.plus_ms(HOUR_MS as u64),
        resolution_s,
    };
    let rows = store.metric_rows(&query(60, Some("echo"))).await.unwrap();
    let value = |rows: &[MetricRow], metric: &str, at: Timestamp, bucket: i32| {
        rows.iter()
            .find(|r| r.metric == metric && r.bucket_start == at && r.bucket == bucket)
            .map(|r| r.value)
    };
    assert_eq!(value(&rows, series::TASKS_SUBMITTED, m1, -1), Some(6.0));
    assert_eq!(value(&rows, series::TASKS_SUBMITTED, m2, -1), Some(4.0));
    assert_eq!(value(&rows, series::LATENCY_E2E, m1, 2), Some(10.0));
    assert_eq!(value(&rows, series::QUEUE_READY, m1, -1), Some(2.0));
    assert!(
        rows.windows(2)
            .all(|w| w[0].bucket_start <= w[1].bucket_start)
    );
    assert!(
        store
            .metric_rows(&query(60, Some("other")))
            .await
            .unwrap()
            .is_empty()
    );
    // Downsampling folds the minutes into their hour: sums, and maxima for gauges.
    let folded = store
        .downsample_metrics(hour.plus_ms(HOUR_MS as u64))
        .await
        .unwrap();
    assert_eq!(folded, 5);
    assert!(
        store
            .metric_rows(&query(60, None))
            .await
            .unwrap()
            .is_empty()
    );
    let hours = store.metric_rows(&query(3600, None)).await.unwrap();
    assert_eq!(value(&hours, series::TASKS_SUBMITTED, hour, -1), Some(10.0));
    assert_eq!(value(&hours, series::LATENCY_E2E, hour, 2), Some(10.0));
    assert_eq!(value(&hours, series::QUEUE_READY, hour, -1), Some(5.0));
    // Folding more minutes of the same hour later adds to the hour.
    store
        .add_metric_points(m2, &[point(series::TASKS_SUBMITTED, "echo", -1, 1.0)])
        .await
        .unwrap();
    store
        .downsample_metrics(hour.plus_ms(HOUR_MS as u64))
        .await
        .unwrap();
    let hours = store.metric_rows(&query(3600, None)).await.unwrap();
    assert_eq!(value(&hours, series::TASKS_SUBMITTED, hour, -1), Some(11.0));
    assert_eq!(store.prune_metrics(3600, hour.plus_ms(1)).await.unwrap(), 3);
    assert!(
        store
            .metric_rows(&query(3600, None))
            .await
            .unwrap()
            .is_empty()
    );
}

fn alert_rule(name: &str) -> AlertRule {
    AlertRule {
        id: uuid::Uuid::now_v7(),
        spec: AlertRuleSpec {
            name: name.into(),
            kind: AlertKind::FailureRate,
            agent: Some("fail".into()),
            threshold: 0.5,
            window_s: 300,
            for_s: 0,
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
        },
        state: AlertState::default(),
        created_at: t0(),
        updated_at: t0(),
    }
}

fn alert_event(rule: &AlertRule, state: AlertEventState, at: Timestamp) -> AlertEvent {
    AlertEvent {
        id: uuid::Uuid::now_v7(),
        rule_id: rule.id,
        rule_name: rule.spec.name.clone(),
        kind: rule.spec.kind,
        agent: rule.spec.agent.clone(),
        state,
        value: 0.75,
        threshold: rule.spec.threshold,
        at,
        message: "failure rate 75%".into(),
        webhook_url: rule.spec.webhook_url.clone(),
        notify_status: NotifyStatus::Pending,
        notify_attempts: 0,
        next_notify_at: Some(at),
        notify_error: None,
    }
}

pub async fn alert_rules_and_events(store: SharedStore) {
    let mut a = alert_rule("a");
    let b = alert_rule("b");
    store.put_alert_rule(&a).await.unwrap();
    store.put_alert_rule(&b).await.unwrap();
    assert_eq!(store.get_alert_rule(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.list_alert_rules().await.unwrap().len(), 2);
    let state = AlertState {
        status: AlertStatus::Firing,
        since: Some(t0()),
        value: Some(0.75),
        evaluated_at: Some(t0()),
    };
    store.save_alert_state(a.id, &state).await.unwrap();
    a.spec.threshold = 0.25;
    a.updated_at = t0().plus_ms(5);
    a.state = state.clone();
    store.put_alert_rule(&a).await.unwrap();
    let got = store.get_alert_rule(a.id).await.unwrap().unwrap();
    assert_eq!(got.spec.threshold, 0.25);
    assert_eq!(got.state, state);
    assert!(store.delete_alert_rule(b.id).await.unwrap());
    assert!(!store.delete_alert_rule(b.id).await.unwrap());
    assert_eq!(store.get_alert_rule(b.id).await.unwrap(), None);

    let fired = alert_event(&a, AlertEventState::Firing, t0());
    let mut resolved = alert_event(&a, AlertEventState::Resolved, t0().plus_ms(1_000));
    resolved.notify_status = NotifyStatus::None;
    resolved.next_notify_at = None;
    resolved.webhook_url = None;
    let other = alert_event(&b, AlertEventState::Firing, t0().plus_ms(2_000));
    for e in [&fired, &resolved, &other] {
        store.insert_alert_event(e).await.unwrap();
    }
    let all = store
        .list_alert_events(&AlertEventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![other.id, resolved.id, fired.id],
        "newest first"
    );
    assert_eq!(all[2], fired, "round trip");
    let of_a = store
        .list_alert_events(&AlertEventQuery {
            rule_id: Some(a.id),
            before_id: Some(resolved.id),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![fired.id]
    );

    // The outbox: due notifications, retried later, then sent.
    let due = store.due_notifications(t0(), 10).await.unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![fired.id]);
    assert_eq!(
        due[0].webhook_url.as_deref(),
        Some("http://127.0.0.1:9/hook")
    );
    store
        .record_notification(&NotifyUpdate {
            event_id: fired.id,
            status: NotifyStatus::Pending,
            attempts: 1,
            next_at: Some(t0().plus_ms(500)),
            error: Some("HTTP 500".into()),
        })
        .await
        .unwrap();
    assert!(store.due_notifications(t0(), 10).await.unwrap().is_empty());
    let later = store
        .due_notifications(t0().plus_ms(2_000), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].notify_attempts, 1);
    assert_eq!(later[0].notify_error.as_deref(), Some("HTTP 500"));
    store
        .record_notification(&NotifyUpdate {
            event_id: fired.id,
            status: NotifyStatus::Sent,
            attempts: 2,
            next_at: None,
            error: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .due_notifications(t0().plus_ms(2_000), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Retention keeps undelivered notifications.
    assert_eq!(
        store.prune_alert_events(t0().plus_ms(3_000)).await.unwrap(),
        2
    );
    let left = store
        .list_alert_events(&AlertEventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![other.id]
    );
}

pub async fn agent_report_counts_tasks(store: SharedStore) {
    let now = Timestamp::now();
    let from = now.minus_ms(60_000);
    let worker = WorkerId::new();
    let agent = format!("report-{}", uuid::Uuid::new_v4().simple());
    let fallback_agent = format!("{agent}-fb");
    let fresh = |delay: u64| {
        let mut t = new_task(&agent, 0, now);
        t.created_at = now.minus_ms(delay);
        t.run_at = t.created_at;
        t
    };
    // Three succeed (one after a retry), one is dead, one falls back, one is cached,
    // one is still queued.
    let mut batch: Vec<NewTask> = (0..5).map(|_| fresh(0)).collect();
    let mut cached = fresh(0);
    cached.cached_output = Some(json!("hit"));
    batch.push(cached);
    batch.push(fresh(0));
    insert(&store, batch).await;
    let at = |ms: u64| now.plus_ms(ms);
    let claimed = claim(&store, worker, now, &agent, 5).await;
    assert_eq!(claimed.len(), 5);
    let err = TaskError::retryable("x", "boom");
    let retried = store
        .complete_tasks(&[done(
            &claimed[0],
            at(3),
            Outcome::Retry {
                error: err.clone(),
                run_at: now,
            },
        )])
        .await
        .unwrap();
    assert_eq!(retried.transitions.len(), 1);
    let again = claim(&store, worker, now, &agent, 1).await;
    assert_eq!(again.len(), 1);
    let mut fallback = new_task(&fallback_agent, 0, now);
    fallback.fallback_of = Some(claimed[4].id);
    store
        .complete_tasks(&[
            // Language-model usage as the llm kind reports it; one without prices, one
            // with a malformed count (not counted).
            done(
                &again[0],
                at(40),
                Outcome::Succeeded {
                    output: json!({"content": "a", "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25}}),
                },
            ),
            done(
                &claimed[1],
                at(40),
                Outcome::Succeeded {
                    output: json!({"usage": {"prompt_tokens": 7, "completion_tokens": "many"}}),
                },
            ),
            done(
                &claimed[2],
                at(2_000),
                Outcome::Succeeded { output: json!(1) },
            ),
            done(&claimed[3], at(40), Outcome::Dead { error: err.clone() }),
            done(
                &claimed[4],
                at(40),
                Outcome::Fallback {
                    error: err.clone(),
                    fallback: Box::new(fallback),
                },
            ),
        ])
        .await
        .unwrap();
    let report = store.agent_report(from, now.plus_ms(60_000)).await.unwrap();
    let row = report
        .iter()
        .find(|r| r.agent == agent)
        .expect("the agent is in the report");
    assert_eq!(
        (
            row.tasks,
            row.succeeded,
            row.failed,
            row.dead,
            row.cancelled
        ),
        (7, 4, 1, 1, 0)
    );
    assert_eq!((row.retries, row.fallbacks, row.cached), (1, 1, 1));
    assert_eq!(
        row.usage,
        Some(UsageTotals {
            tasks: 2,
            prompt_tokens: 17,
            completion_tokens: 5,
            cost: Some(0.25),
        })
    );
    let mut expected = vec![0u64; HISTOGRAM_BUCKETS];
    expected[latency_bucket(0)] += 1; // cached
    expected[latency_bucket(40)] += 4;
    expected[latency_bucket(2_000)] += 1;
    assert_eq!(
        row.latency_buckets, expected,
        "the queued task has no latency"
    );
    let fb = report.iter().find(|r| r.agent == fallback_agent).unwrap();
    assert_eq!((fb.tasks, fb.usage.clone()), (1, None));
    assert!(
        store
            .agent_report(now.plus_ms(60_000), now.plus_ms(120_000))
            .await
            .unwrap()
            .iter()
            .all(|r| r.agent != agent),
        "tasks outside the period are not counted"
    );
}
