//! Live events and task logs.

use super::*;

pub async fn live_events_and_logs(store: SharedStore) {
    let (t, c) = running_task(&store, "logger").await;
    let draft = |body: EventBody, attempt: u32| EventDraft {
        attempt,
        ..live_event(&c, body)
    };
    let log = |m: &str| EventBody::Log {
        level: LogLevel::Info,
        message: m.into(),
    };
    let recorded = store
        .record_events(
            vec![
                draft(log("one"), c.attempt),
                draft(
                    EventBody::Progress {
                        progress: Some(0.5),
                        message: None,
                    },
                    c.attempt,
                ),
                draft(log("two"), c.attempt),
                draft(log("stale"), c.attempt + 7),
            ],
            10_000,
        )
        .await
        .unwrap();
    let seqs: Vec<Option<u64>> = recorded.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        vec![Some(3), Some(4), Some(5), None],
        "gap-free after the running event (2)"
    );
    assert_eq!(recorded[0].agent, "logger");
    let logs = store.task_logs(t.id, 0, 100).await.unwrap();
    assert_eq!(
        logs.iter()
            .map(|l| (l.seq, l.message.as_str()))
            .collect::<Vec<_>>(),
        vec![(3, "one"), (5, "two")]
    );
    assert_eq!(store.task_logs(t.id, 3, 100).await.unwrap().len(), 1);
    let r = store
        .complete_tasks(&[done(&c, t0(), Outcome::Succeeded { output: json!(1) })])
        .await
        .unwrap();
    assert_eq!(
        r.transitions[0].seq, 6,
        "the final event follows the live ones"
    );
    let late = store
        .record_events(vec![draft(log("late"), c.attempt)], 10_000)
        .await
        .unwrap();
    assert_eq!(late[0].seq, None, "no events after the attempt ended");
}

/// Live events are numbered from blocks reserved ahead and stored behind: a block moves
/// neither the task's seq nor anything readable; whatever the task records afterwards is
/// numbered after the block; events stored late (after the final event) are kept.
pub async fn reserved_numbers_come_before_later_changes(store: SharedStore) {
    let (t, c) = running_task(&store, "numbered").await;
    let ask = |attempt: u32, count: u64| NumberAsk {
        task_id: c.id,
        attempt,
        count,
    };
    let blocks = store
        .reserve_event_numbers(&[ask(c.attempt, 10), ask(c.attempt + 7, 5)])
        .await
        .unwrap();
    assert_eq!(blocks.len(), 1, "only the running attempt gets numbers");
    let block = &blocks[0];
    assert_eq!((block.first, block.last), (c.seq + 1, c.seq + 10));
    assert_eq!(block.agent, "numbered");
    let next = store
        .reserve_event_numbers(&[ask(c.attempt, 4)])
        .await
        .unwrap();
    assert_eq!((next[0].first, next[0].last), (c.seq + 11, c.seq + 14));
    assert_eq!(
        store.get_task(t.id).await.unwrap().unwrap().seq,
        c.seq,
        "a reservation is not an event"
    );

    let event = |seq: u64, body: EventBody| NumberedEvent {
        attempt: c.attempt,
        event: Arc::new(TaskEvent {
            task_id: c.id,
            seq,
            agent: block.agent.clone(),
            owner_id: None,
            at: t0(),
            body,
        }),
    };
    let log = |m: &str| EventBody::Log {
        level: LogLevel::Info,
        message: m.into(),
    };
    let partial = |n: u64| EventBody::Partial {
        data: json!({ "delta": n }),
    };
    store
        .store_events(
            &[event(c.seq + 1, log("one")), event(c.seq + 2, partial(1))],
            100,
        )
        .await
        .unwrap();
    assert_eq!(store.get_task(t.id).await.unwrap().unwrap().seq, c.seq + 2);
    assert_eq!(store.task_logs(t.id, 0, 10).await.unwrap().len(), 1);

    let r = store
        .complete_tasks(&[done(
            &c,
            t0(),
            Outcome::Dead {
                error: TaskError::permanent("boom", "failed for good"),
            },
        )])
        .await
        .unwrap();
    assert_eq!(
        r.transitions[0].seq,
        c.seq + 15,
        "the final event follows every number handed out"
    );
    assert!(
        store
            .reserve_event_numbers(&[ask(c.attempt, 4)])
            .await
            .unwrap()
            .is_empty(),
        "no numbers for an attempt that ended"
    );
    store
        .store_events(&[event(c.seq + 3, partial(2))], 100)
        .await
        .unwrap();
    let stream = store.task_stream(t.id, 0, 10).await.unwrap();
    assert_eq!(
        stream.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![c.seq + 2, c.seq + 3],
        "an event published before the end is kept when stored after it"
    );
    let task = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(task.seq, c.seq + 15, "the final event stays the newest");
    assert_eq!(
        store
            .replay_task(t.id, t0())
            .await
            .unwrap()
            .map(|tr| tr.seq),
        Some(c.seq + 16),
        "as do later changes"
    );
}

pub async fn task_logs_filter_and_expire(store: SharedStore) {
    let (t, c) = running_task(&store, "logfilter").await;
    let line = |level, m: &str| {
        live_event(
            &c,
            EventBody::Log {
                level,
                message: m.into(),
            },
        )
    };
    store
        .record_events(
            vec![
                line(LogLevel::Debug, "connecting to db"),
                line(LogLevel::Info, "Fetched 50% of rows_x"),
                line(LogLevel::Warn, "slow DB answer"),
                line(LogLevel::Error, "db gone"),
            ],
            10_000,
        )
        .await
        .unwrap();
    let q = |f: &dyn Fn(&mut LogQuery)| {
        let mut q = LogQuery {
            task_id: t.id,
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let messages =
        |lines: Vec<TaskLogLine>| lines.into_iter().map(|l| l.message).collect::<Vec<_>>();
    assert_eq!(store.query_task_logs(&q(&|_| {})).await.unwrap().len(), 4);
    assert_eq!(
        messages(
            store
                .query_task_logs(&q(&|q| q.min_level = Some(LogLevel::Warn)))
                .await
                .unwrap()
        ),
        vec!["slow DB answer", "db gone"]
    );
    assert_eq!(
        messages(
            store
                .query_task_logs(&q(&|q| q.contains = Some("DB".into())))
                .await
                .unwrap()
        ),
        vec!["connecting to db", "slow DB answer", "db gone"],
        "case-insensitive"
    );
    for literal in ["50%", "_"] {
        assert_eq!(
            messages(
                store
                    .query_task_logs(&q(&|q| q.contains = Some(literal.into())))
                    .await
                    .unwrap()
            ),
            vec!["Fetched 50% of rows_x"],
            "wildcards are literal"
        );
    }
    // Retention: logs of tasks created before the cutoff go.
    assert_eq!(
        store
            .prune_task_logs(Timestamp::now().minus_ms(3_600_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .prune_task_logs(Timestamp::now().plus_ms(1_000))
            .await
            .unwrap(),
        4
    );
    assert!(store.query_task_logs(&q(&|_| {})).await.unwrap().is_empty());
}

/// Stream events (progress, partial output) are kept with the task, the oldest dropped
/// past the bound, and a reader told what it missed.
pub async fn task_streams_are_kept_and_cut(store: SharedStore) {
    let (t, c) = running_task(&store, "streamer").await;
    let partial = |i: u64| EventDraft {
        at: t0().plus_ms(i),
        ..live_event(
            &c,
            EventBody::Partial {
                data: json!({"delta": format!("token {i}\u{0}")}),
            },
        )
    };
    let keep = 100;
    // One log line among them: numbered, stored as a log, not a stream event.
    let first = store
        .record_events(
            vec![
                partial(0),
                live_event(
                    &c,
                    EventBody::Log {
                        level: LogLevel::Info,
                        message: "started".into(),
                    },
                ),
                live_event(
                    &c,
                    EventBody::Progress {
                        progress: Some(0.25),
                        message: Some("a quarter".into()),
                    },
                ),
            ],
            keep,
        )
        .await
        .unwrap();
    let seqs: Vec<u64> = first.iter().map(|r| r.seq.unwrap()).collect();
    let kept = store.task_stream(t.id, 0, 1_000).await.unwrap();
    assert_eq!(kept.cut, None);
    assert_eq!(
        kept.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[0], seqs[2]],
        "partial output and progress are kept, the log line is not"
    );
    assert_eq!(
        kept.events[0].body,
        EventBody::Partial {
            data: json!({"delta": "token 0\u{0}"})
        },
        "kept as given, U+0000 included"
    );
    assert_eq!(
        kept.events[1].body,
        EventBody::Progress {
            progress: Some(0.25),
            message: Some("a quarter".into())
        }
    );
    // 998 more partial events (1,000 stream events in all), in batches of 50.
    let mut last_seq = 0;
    for batch in 0..20 {
        let drafts = (1..=50)
            .map(|i| partial(batch * 50 + i))
            .take(if batch == 19 { 48 } else { 50 })
            .collect();
        let recorded = store.record_events(drafts, keep).await.unwrap();
        last_seq = recorded.last().unwrap().seq.unwrap();
    }
    let kept = store.task_stream(t.id, 0, 10_000).await.unwrap();
    let n = kept.events.len() as u64;
    assert!(
        (u64::from(keep)..u64::from(keep) + 256).contains(&n),
        "{n} events kept: the last {keep}, and fewer than 256 more waiting for the next cut"
    );
    assert_eq!(
        kept.events.last().unwrap().seq,
        last_seq,
        "the newest is kept"
    );
    let cut = kept.cut.expect("the cut is reported");
    assert_eq!(
        cut.dropped + n,
        1_000,
        "every stream event is kept or counted"
    );
    assert!(cut.last_seq < kept.events[0].seq);
    // A reader past the cut is not told about it; one before it is.
    let after = store.task_stream(t.id, cut.last_seq, 10_000).await.unwrap();
    assert_eq!(after.cut, None);
    assert_eq!(after.events.len() as u64, n);
    let tail = store.task_stream(t.id, last_seq - 3, 10_000).await.unwrap();
    assert_eq!(tail.events.len(), 3);
    // 0 keeps nothing.
    let before = store
        .task_stream(t.id, 0, 10_000)
        .await
        .unwrap()
        .events
        .len();
    store.record_events(vec![partial(5_000)], 0).await.unwrap();
    assert_eq!(
        store
            .task_stream(t.id, 0, 10_000)
            .await
            .unwrap()
            .events
            .len(),
        before
    );
    // Streams expire with the logs.
    store
        .prune_task_logs(Timestamp::now().plus_ms(1_000))
        .await
        .unwrap();
    assert!(
        store
            .task_stream(t.id, 0, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}
