//! The queue rules with controlled time, and durability across reopening the database.

use std::collections::BTreeMap;

use nimbus_store::{NewMessage, QueueError, Store, StoreError};

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn msg(body: &str) -> NewMessage {
    NewMessage {
        id: format!("id-{body}"),
        body: body.into(),
        md5_body: "md5".into(),
        ..Default::default()
    }
}

fn queue_err(r: Result<impl std::fmt::Debug, StoreError>) -> QueueError {
    match r {
        Err(StoreError::Queue(e)) => e,
        other => panic!("expected a queue error, got {other:?}"),
    }
}

const T0: u64 = 1_700_000_000_000;

#[tokio::test]
async fn a_received_message_is_invisible_until_its_timeout_then_comes_back() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", attrs(&[("VisibilityTimeout", "10")]), T0)
        .unwrap();
    s.send("q", vec![msg("a"), msg("b")], T0).await.unwrap();
    let got = s.receive("q", 10, None, T0).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|r| r.message.body.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(got[0].message.receive_count, 1);
    assert!(s
        .receive("q", 10, None, T0 + 9_999)
        .await
        .unwrap()
        .is_empty());
    let c = s.counts("q", T0 + 1).unwrap();
    assert_eq!((c.visible, c.in_flight, c.delayed), (0, 2, 0));
    let again = s.receive("q", 1, None, T0 + 10_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message.receive_count, 2);
    assert_ne!(
        again[0].receipt, got[0].receipt,
        "a new receipt handle per receive"
    );
    assert_eq!(again[0].message.first_receive_ms, Some(T0));
}

#[tokio::test]
async fn delete_needs_the_latest_receipt_and_a_stale_one_is_accepted_silently() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", attrs(&[("VisibilityTimeout", "1")]), T0)
        .unwrap();
    s.send("q", vec![msg("a")], T0).await.unwrap();
    let first = s.receive("q", 1, None, T0).await.unwrap().remove(0);
    let second = s.receive("q", 1, None, T0 + 1_000).await.unwrap().remove(0);
    s.delete_message("q", &first.receipt).await.unwrap();
    assert_eq!(
        s.counts("q", T0 + 1_000).unwrap().in_flight,
        1,
        "the stale handle deleted nothing"
    );
    s.delete_message("q", &second.receipt).await.unwrap();
    assert_eq!(s.counts("q", T0 + 1_000).unwrap(), Default::default());
    assert!(matches!(
        queue_err(s.delete_message("q", "garbage").await),
        QueueError::ReceiptHandleIsInvalid(_)
    ));
}

#[tokio::test]
async fn delays_hold_messages_back() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", attrs(&[("DelaySeconds", "5")]), T0)
        .unwrap();
    s.send("q", vec![msg("queue-delay")], T0).await.unwrap();
    s.send(
        "q",
        vec![NewMessage {
            delay_s: Some(0),
            ..msg("no-delay")
        }],
        T0,
    )
    .await
    .unwrap();
    assert_eq!(s.counts("q", T0).unwrap().delayed, 1);
    let got = s.receive("q", 10, None, T0).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.body, "no-delay");
    assert_eq!(
        s.receive("q", 10, None, T0 + 5_000).await.unwrap()[0]
            .message
            .body,
        "queue-delay"
    );
}

#[tokio::test]
async fn messages_past_max_receive_count_move_to_the_dead_letter_queue() {
    let s = Store::in_memory().unwrap();
    s.create_queue("dlq", BTreeMap::new(), T0).unwrap();
    let policy =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"2"}"#;
    s.create_queue(
        "q",
        attrs(&[("VisibilityTimeout", "1"), ("RedrivePolicy", policy)]),
        T0,
    )
    .unwrap();
    s.send("q", vec![msg("poison")], T0).await.unwrap();
    assert_eq!(s.receive("q", 1, None, T0).await.unwrap().len(), 1);
    assert_eq!(s.receive("q", 1, None, T0 + 1_000).await.unwrap().len(), 1);
    assert!(
        s.receive("q", 1, None, T0 + 2_000)
            .await
            .unwrap()
            .is_empty(),
        "third receive: moved"
    );
    let dead = s.receive("dlq", 10, None, T0 + 2_000).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.body, "poison");
    assert_eq!(dead[0].message.sent_ms, T0, "keeps its original send time");
    assert_eq!(s.dead_letter_sources("dlq").unwrap(), ["q"]);
}

#[tokio::test]
async fn expired_messages_are_dropped() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", attrs(&[("MessageRetentionPeriod", "60")]), T0)
        .unwrap();
    s.send("q", vec![msg("old")], T0).await.unwrap();
    s.send("q", vec![msg("new")], T0 + 30_000).await.unwrap();
    let got = s.receive("q", 10, None, T0 + 61_000).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|r| r.message.body.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
}

#[tokio::test]
async fn change_visibility_applies_to_in_flight_messages_only() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", BTreeMap::new(), T0).unwrap();
    s.send("q", vec![msg("a")], T0).await.unwrap();
    let r = s.receive("q", 1, None, T0).await.unwrap().remove(0);
    s.change_visibility("q", &r.receipt, 0, T0 + 1)
        .await
        .unwrap();
    let r2 = s.receive("q", 1, None, T0 + 1).await.unwrap().remove(0);
    assert_eq!(r2.message.receive_count, 2);
    assert_eq!(
        queue_err(s.change_visibility("q", &r.receipt, 5, T0 + 2).await),
        QueueError::MessageNotInflight
    );
}

#[tokio::test]
async fn queue_attributes_are_checked_as_sqs_does() {
    let s = Store::in_memory().unwrap();
    let e = queue_err(s.create_queue("q", attrs(&[("VisibilityTimeout", "43201")]), T0));
    assert!(
        matches!(e, QueueError::InvalidAttributeValue { ref name, .. } if name == "VisibilityTimeout"),
        "{e:?}"
    );
    assert_eq!(
        queue_err(s.create_queue("q", attrs(&[("Colour", "blue")]), T0)),
        QueueError::InvalidAttributeName("Colour".into())
    );
    let e = queue_err(s.create_queue(
        "q",
        attrs(&[("RedrivePolicy", "{\"maxReceiveCount\":3}")]),
        T0,
    ));
    assert!(e.to_string().contains("deadLetterTargetArn"), "{e}");
    assert!(matches!(
        queue_err(s.create_queue("q.fifo", attrs(&[("FifoQueue", "maybe")]), T0)),
        QueueError::InvalidAttributeValue { .. }
    ));
    assert!(s
        .create_queue("q", attrs(&[("DelaySeconds", "3")]), T0)
        .unwrap());
    assert!(
        !s.create_queue("q", attrs(&[("DelaySeconds", "3")]), T0)
            .unwrap(),
        "same attributes: fine"
    );
    assert_eq!(
        queue_err(s.create_queue("q", attrs(&[("DelaySeconds", "4")]), T0)),
        QueueError::QueueAlreadyExists("DelaySeconds".into())
    );
    assert_eq!(
        queue_err(s.send("nope", vec![msg("a")], T0).await),
        QueueError::NonExistentQueue
    );
    s.set_queue_attributes("q", attrs(&[("VisibilityTimeout", "7")]))
        .unwrap();
    assert_eq!(s.queue_attributes("q").unwrap().visibility_timeout_s, 7);
    assert_eq!(s.queue_attributes("q").unwrap().delay_s, 3);
}

#[tokio::test]
async fn everything_acknowledged_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nimbus.db");
    {
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.schema_version().unwrap(),
            nimbus_store::MIGRATIONS.len() as i64
        );
        s.create_queue("q", attrs(&[("VisibilityTimeout", "30")]), T0)
            .unwrap();
        let batch: Vec<NewMessage> = (0..100).map(|i| msg(&i.to_string())).collect();
        s.send("q", batch.clone(), T0).await.unwrap();
        s.receive("q", 10, None, T0).await.unwrap();
        // Never closed: the files are copied as a killed process leaves them (its lock would
        // hold the originals until this process ends).
        std::mem::forget(s);
    }
    let after_kill = tempfile::tempdir().unwrap();
    for file in ["nimbus.db", "nimbus.db-wal"] {
        std::fs::copy(dir.path().join(file), after_kill.path().join(file)).unwrap();
    }
    let s = Store::open(&after_kill.path().join("nimbus.db")).unwrap();
    let c = s.counts("q", T0).unwrap();
    assert_eq!((c.visible, c.in_flight), (90, 10));
    let later = s.receive("q", 10, None, T0 + 30_000).await.unwrap();
    assert_eq!(
        later[0].message.body, "0",
        "in-flight messages reappear after their timeout"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_nimbus_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nimbus.db");
    drop(Store::open(&path).unwrap());
    bump_schema_version(&path);
    match Store::open(&path) {
        Err(e @ StoreError::TooNew { .. }) => assert!(e.to_string().contains("newer nimbus")),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// Bumps the schema version with the sqlite3 file format's own header field (offset 60,
/// `user_version`), so the test needs no SQL client of its own.
fn bump_schema_version(path: &std::path::Path) {
    // WAL content is checkpointed when the last connection closes, so the header is current.
    let mut bytes = std::fs::read(path).unwrap();
    bytes[60..64].copy_from_slice(&999u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn unreceived_messages_are_visible_at_once_with_their_receive_count_undone() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", attrs(&[("VisibilityTimeout", "30")]), T0)
        .unwrap();
    s.send("q", vec![msg("a")], T0).await.unwrap();
    let first = s.receive("q", 1, None, T0).await.unwrap();
    s.unreceive("q", vec![first[0].receipt.clone()], T0 + 5)
        .await
        .unwrap();
    let again = s.receive("q", 1, None, T0 + 6).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message.receive_count, 1);
    assert_eq!(again[0].message.first_receive_ms, Some(T0 + 6));
}

fn fifo_msg(body: &str, group: &str, dedup: &str) -> NewMessage {
    NewMessage {
        group_id: Some(group.into()),
        deduplication_id: Some(dedup.into()),
        ..msg(body)
    }
}

fn fifo_queue(s: &Store) {
    s.create_queue(
        "q.fifo",
        attrs(&[("FifoQueue", "true"), ("VisibilityTimeout", "10")]),
        T0,
    )
    .unwrap();
}

#[tokio::test]
async fn a_fifo_queue_name_and_attribute_must_agree() {
    let s = Store::in_memory().unwrap();
    for (name, a) in [("q", &[("FifoQueue", "true")][..]), ("q.fifo", &[][..])] {
        assert!(matches!(
            queue_err(s.create_queue(name, attrs(a), T0)),
            QueueError::InvalidParameterValue(_)
        ));
    }
    assert_eq!(
        queue_err(s.create_queue("q", attrs(&[("ContentBasedDeduplication", "true")]), T0)),
        QueueError::InvalidAttributeName("ContentBasedDeduplication".into())
    );
}

#[tokio::test]
async fn a_fifo_group_is_received_in_order_one_consumer_at_a_time() {
    let s = Store::in_memory().unwrap();
    fifo_queue(&s);
    let sent = s
        .send(
            "q.fifo",
            vec![
                fifo_msg("a1", "a", "1"),
                fifo_msg("b1", "b", "2"),
                fifo_msg("a2", "a", "3"),
            ],
            T0,
        )
        .await
        .unwrap();
    assert!(sent[0].sequence_number < sent[1].sequence_number);
    let first = s.receive("q.fifo", 1, None, T0).await.unwrap();
    assert_eq!(first[0].message.body, "a1");
    // Group a has a message in flight: only b is handed out.
    let next = s.receive("q.fifo", 10, None, T0).await.unwrap();
    assert_eq!(
        next.iter()
            .map(|r| r.message.body.as_str())
            .collect::<Vec<_>>(),
        ["b1"]
    );
    s.delete_message("q.fifo", &first[0].receipt).await.unwrap();
    let after = s.receive("q.fifo", 10, None, T0).await.unwrap();
    assert_eq!(after[0].message.body, "a2");
    assert_eq!(after[0].message.group_id.as_deref(), Some("a"));
    assert!(after[0].message.sequence_number.is_some());
}

#[tokio::test]
async fn a_failed_fifo_message_blocks_its_group_until_it_comes_back_first() {
    let s = Store::in_memory().unwrap();
    fifo_queue(&s);
    s.send(
        "q.fifo",
        vec![fifo_msg("a1", "a", "1"), fifo_msg("a2", "a", "2")],
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        s.receive("q.fifo", 1, None, T0).await.unwrap()[0]
            .message
            .body,
        "a1"
    );
    assert!(s
        .receive("q.fifo", 10, None, T0 + 9_999)
        .await
        .unwrap()
        .is_empty());
    let again = s.receive("q.fifo", 10, None, T0 + 10_000).await.unwrap();
    assert_eq!(
        again
            .iter()
            .map(|r| r.message.body.as_str())
            .collect::<Vec<_>>(),
        ["a1", "a2"]
    );
}

#[tokio::test]
async fn a_duplicate_within_five_minutes_is_dropped_and_answered_with_the_first_id() {
    let s = Store::in_memory().unwrap();
    fifo_queue(&s);
    let first = s
        .send("q.fifo", vec![fifo_msg("x", "g", "d")], T0)
        .await
        .unwrap();
    let mut again = fifo_msg("x", "g", "d");
    again.id = "other-id".into();
    let dup = s
        .send("q.fifo", vec![again.clone()], T0 + 299_999)
        .await
        .unwrap();
    assert_eq!(dup, first);
    assert_eq!(s.counts("q.fifo", T0).unwrap().visible, 1);
    let later = s.send("q.fifo", vec![again], T0 + 300_001).await.unwrap();
    assert_eq!(later[0].id, "other-id");
    assert_eq!(s.counts("q.fifo", T0 + 300_001).unwrap().visible, 2);
}

#[tokio::test]
async fn a_fifo_send_needs_a_group_and_a_deduplication_id() {
    let s = Store::in_memory().unwrap();
    fifo_queue(&s);
    assert!(matches!(
        queue_err(s.send("q.fifo", vec![msg("x")], T0).await),
        QueueError::InvalidParameterValue(m) if m.contains("MessageGroupId")
    ));
    let no_dedup = NewMessage {
        group_id: Some("g".into()),
        ..msg("x")
    };
    assert!(matches!(
        queue_err(s.send("q.fifo", vec![no_dedup], T0).await),
        QueueError::InvalidParameterValue(m) if m.contains("ContentBasedDeduplication")
    ));
}

/// (visible, in flight, delayed) of `queue` at `now`.
fn counts(s: &Store, queue: &str, now: u64) -> (u64, u64, u64) {
    let c = s.counts(queue, now).unwrap();
    (c.visible, c.in_flight, c.delayed)
}

#[tokio::test]
async fn the_counts_follow_every_way_a_message_arrives_and_leaves() {
    let s = Store::in_memory().unwrap();
    s.create_queue("dlq", BTreeMap::new(), T0).unwrap();
    let policy =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":1}"#;
    s.create_queue(
        "q",
        attrs(&[
            ("VisibilityTimeout", "10"),
            ("MessageRetentionPeriod", "60"),
            ("RedrivePolicy", policy),
        ]),
        T0,
    )
    .unwrap();
    s.send("q", vec![msg("a"), msg("b"), msg("c")], T0)
        .await
        .unwrap();
    assert_eq!(counts(&s, "q", T0), (3, 0, 0), "sent");
    let a = s.receive("q", 1, None, T0).await.unwrap().remove(0);
    assert_eq!(counts(&s, "q", T0), (2, 1, 0), "received");
    s.delete_messages(
        "q",
        vec![a.receipt.clone(), a.receipt.clone(), "junk".into()],
    )
    .await
    .unwrap();
    assert_eq!(
        counts(&s, "q", T0),
        (2, 0, 0),
        "deleted once, however often asked"
    );
    s.receive("q", 1, None, T0 + 1).await.unwrap();
    // b is visible again with one receive behind it: moved to the DLQ; c is received.
    let got = s.receive("q", 10, None, T0 + 10_001).await.unwrap();
    assert_eq!(got[0].message.body, "c");
    assert_eq!(counts(&s, "q", T0 + 10_001), (0, 1, 0), "redriven");
    assert_eq!(counts(&s, "dlq", T0 + 10_001), (1, 0, 0), "redriven");
    let mut late = msg("late");
    late.delay_s = Some(5);
    s.send("q", vec![late], T0 + 20_000).await.unwrap();
    assert_eq!(counts(&s, "q", T0 + 20_000), (0, 1, 1), "delayed");
    assert_eq!(
        counts(&s, "q", T0 + 25_000),
        (2, 0, 0),
        "delay and visibility timeout over"
    );
    // c (sent at T0) outlives its 60 s retention.
    s.receive("q", 10, Some(0), T0 + 61_000).await.unwrap();
    assert_eq!(counts(&s, "q", T0 + 61_000), (1, 0, 0), "expired");
    s.purge_queue("q").unwrap();
    assert_eq!(counts(&s, "q", T0 + 61_000), (0, 0, 0), "purged");
}

/// The database an older nimbus left in `dir` (its schema at `version`, rows added by `sql`),
/// opened by this one: migrated to the current schema.
fn opened_from_version(dir: &std::path::Path, version: usize, sql: &str) -> Store {
    let path = dir.join("nimbus.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let conn =
            nimbus_store::migrate(conn, "old", &nimbus_store::MIGRATIONS[..version]).unwrap();
        conn.execute_batch(sql).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        nimbus_store::MIGRATIONS.len() as i64
    );
    s
}

#[tokio::test]
async fn a_database_from_before_the_maintained_counts_is_migrated_with_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let s = opened_from_version(
        dir.path(),
        4,
        "INSERT INTO queues (name, created_ms, attributes) VALUES ('q', 0, '{}'), ('e', 0, '{}');
         INSERT INTO messages (queue, id, body, md5_body, sent_ms, visible_ms, receipt)
         VALUES ('q', '1', 'a', 'm', 0, 0, NULL), ('q', '2', 'b', 'm', 0, 0, NULL),
                ('q', '3', 'c', 'm', 0, 9000000000000, 'nimbus-old');",
    );
    assert_eq!(counts(&s, "q", 1), (2, 1, 0));
    assert_eq!(counts(&s, "e", 1), (0, 0, 0));
    let got = s.receive("q", 10, None, 1).await.unwrap();
    assert_eq!(got.len(), 2);
    s.delete_message("q", &got[0].receipt).await.unwrap();
    assert_eq!(counts(&s, "q", 1), (0, 2, 0));
}

#[tokio::test]
async fn a_second_process_on_the_same_database_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nimbus.db");
    let first = Store::open(&path).unwrap();
    first.create_queue("q", BTreeMap::new(), T0).unwrap();
    match Store::open(&path) {
        Err(e @ StoreError::InUse { .. }) => {
            assert!(e.to_string().contains("another nimbus"), "{e}")
        }
        other => panic!("expected InUse, got {:?}", other.err()),
    }
}

/// The sequence number a FIFO send was given, as a number.
fn sequence_of(sent: &[nimbus_store::Sent]) -> u128 {
    sent[0].sequence_number.as_deref().unwrap().parse().unwrap()
}

#[tokio::test]
async fn fifo_sequence_numbers_only_grow_even_after_the_newest_message_is_deleted_and_the_store_reopened(
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nimbus.db");
    let mut seen = Vec::new();
    for round in 0..3 {
        // Each round empties the table, so a plain row number would be handed out again.
        let s = Store::open(&path).unwrap();
        if round == 0 {
            fifo_queue(&s);
            s.create_queue("std", BTreeMap::new(), T0).unwrap();
        }
        let dedup = round.to_string();
        seen.push(sequence_of(
            &s.send("q.fifo", vec![fifo_msg("m", "g", &dedup)], T0)
                .await
                .unwrap(),
        ));
        let got = s.receive("q.fifo", 1, None, T0).await.unwrap();
        s.delete_message("q.fifo", &got[0].receipt).await.unwrap();
        // A standard send in between takes the next plain row number.
        s.send("std", vec![msg("x")], T0).await.unwrap();
        let x = s.receive("std", 1, None, T0).await.unwrap();
        s.delete_message("std", &x[0].receipt).await.unwrap();
        assert_eq!(counts(&s, "q.fifo", T0), (0, 0, 0));
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

#[tokio::test]
async fn a_stale_receipt_never_deletes_the_message_that_took_its_row_again() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", BTreeMap::new(), T0).unwrap();
    s.send("q", vec![msg("first")], T0).await.unwrap();
    let first = s.receive("q", 1, None, T0).await.unwrap().remove(0);
    s.delete_message("q", &first.receipt).await.unwrap();
    s.send("q", vec![msg("second")], T0).await.unwrap();
    s.delete_message("q", &first.receipt).await.unwrap();
    assert_eq!(counts(&s, "q", T0), (1, 0, 0));
    let second = s.receive("q", 1, None, T0).await.unwrap().remove(0);
    assert_eq!(second.message.body, "second");
    assert_eq!(
        queue_err(s.change_visibility("q", &first.receipt, 5, T0).await),
        QueueError::MessageNotInflight
    );
}

#[tokio::test]
async fn a_database_from_before_plain_row_numbers_is_migrated_keeping_its_messages_counts_and_fifo_order(
) {
    let dir = tempfile::tempdir().unwrap();
    // Row 3 was the newest and is gone: AUTOINCREMENT remembered it in sqlite_sequence.
    let s = opened_from_version(
        dir.path(),
        5,
        r#"INSERT INTO queues (name, created_ms, attributes, depth)
             VALUES ('q', 0, '{}', 2), ('f.fifo', 0, '{"FifoQueue":"true"}', 0);
         INSERT INTO messages (seq, queue, id, body, md5_body, sent_ms, visible_ms)
             VALUES (1, 'q', '1', 'a', 'm', 0, 0), (2, 'q', '2', 'b', 'm', 0, 0),
                    (3, 'f.fifo', '3', 'c', 'm', 0, 0);
         DELETE FROM messages WHERE seq = 3;"#,
    );
    assert_eq!(counts(&s, "q", 1), (2, 0, 0));
    let sent = s
        .send("f.fifo", vec![fifo_msg("d", "g", "d")], 1)
        .await
        .unwrap();
    assert!(sequence_of(&sent) > 3, "{:?}", sent[0].sequence_number);
    let got = s.receive("q", 10, None, 1).await.unwrap();
    let bodies: Vec<&str> = got.iter().map(|r| r.message.body.as_str()).collect();
    assert_eq!(bodies, ["a", "b"], "send order kept");
    drop(s);
    let conn = rusqlite::Connection::open(dir.path().join("nimbus.db")).unwrap();
    let indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master
             WHERE type = 'index' AND tbl_name = 'messages' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        indexes,
        ["messages_held", "messages_inflight", "messages_order"]
    );
}

#[tokio::test]
async fn a_fifo_dead_letter_queue_never_repeats_the_sequence_number_of_a_message_redriven_into_it()
{
    let s = Store::in_memory().unwrap();
    s.create_queue("dlq.fifo", attrs(&[("FifoQueue", "true")]), T0)
        .unwrap();
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq.fifo","maxReceiveCount":1}"#;
    s.create_queue(
        "q.fifo",
        attrs(&[("FifoQueue", "true"), ("RedrivePolicy", policy)]),
        T0,
    )
    .unwrap();
    let first = sequence_of(
        &s.send("q.fifo", vec![fifo_msg("m", "g", "1")], T0)
            .await
            .unwrap(),
    );
    s.receive("q.fifo", 1, Some(0), T0).await.unwrap();
    assert!(s
        .receive("q.fifo", 1, None, T0 + 1)
        .await
        .unwrap()
        .is_empty());
    let moved = s
        .receive("dlq.fifo", 1, None, T0 + 1)
        .await
        .unwrap()
        .remove(0);
    s.delete_message("dlq.fifo", &moved.receipt).await.unwrap();
    let next = sequence_of(
        &s.send("dlq.fifo", vec![fifo_msg("n", "g", "2")], T0 + 2)
            .await
            .unwrap(),
    );
    assert!(next > first, "{next} after {first}");
}

#[tokio::test]
async fn the_next_visibility_time_is_the_next_invisible_messages_never_one_already_visible() {
    let s = Store::in_memory().unwrap();
    s.create_queue("q", BTreeMap::new(), T0).unwrap();
    let mut delayed = msg("delayed");
    delayed.delay_s = Some(5);
    s.send("q", vec![msg("a"), delayed], T0).await.unwrap();
    assert_eq!(s.next_visible_ms("q", T0).unwrap(), Some(T0 + 5_000));
    s.receive("q", 1, Some(30), T0).await.unwrap();
    // At T0 + 6 s the delayed message is visible (and still indexed as held back): the next
    // change is the received one's timeout.
    assert_eq!(
        s.next_visible_ms("q", T0 + 6_000).unwrap(),
        Some(T0 + 30_000)
    );
    assert_eq!(s.next_visible_ms("q", T0 + 30_000).unwrap(), None);
}
