//! Durable jobs with controlled time: claiming, leases, rescheduling, and surviving a reopen.

use nimbus_store::{NewJob, Store};

const T0: u64 = 1_700_000_000_000;

fn job(lane: &str, id: &str) -> NewJob {
    NewJob {
        lane: lane.into(),
        id: id.into(),
        payload: format!("{{\"id\":\"{id}\"}}"),
        meta: "{}".into(),
        due_ms: None,
    }
}

#[tokio::test]
async fn claimed_jobs_are_leased_and_come_back_when_the_lease_ends() {
    let s = Store::in_memory().unwrap();
    s.add_jobs(
        vec![job("fn:a", "1"), job("fn:a", "2"), job("fn:b", "3")],
        T0,
    )
    .await
    .unwrap();
    let got = s.claim_jobs("fn:a", 10, T0, T0 + 1000).unwrap();
    assert_eq!(
        got.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert!(s
        .claim_jobs("fn:a", 10, T0 + 999, T0 + 2000)
        .unwrap()
        .is_empty());
    assert_eq!(s.job_counts("fn:a").unwrap(), (0, 2));
    let back = s.claim_jobs("fn:a", 10, T0 + 1000, T0 + 2000).unwrap();
    assert_eq!(back.len(), 2, "an expired lease hands the job out again");
}

#[tokio::test]
async fn rescheduled_jobs_wait_for_their_time_and_keep_their_counts() {
    let s = Store::in_memory().unwrap();
    s.add_jobs(vec![job("fn:a", "1")], T0).await.unwrap();
    let j = s.claim_jobs("fn:a", 1, T0, T0 + 1000).unwrap().remove(0);
    s.reschedule_job(j.seq, T0 + 60_000, 1, 0).await.unwrap();
    assert!(s
        .claim_jobs("fn:a", 1, T0 + 59_999, T0 + 70_000)
        .unwrap()
        .is_empty());
    assert_eq!(s.next_job_due_ms("fn:a").unwrap(), Some(T0 + 60_000));
    let j = s
        .claim_jobs("fn:a", 1, T0 + 60_000, T0 + 70_000)
        .unwrap()
        .remove(0);
    assert_eq!((j.attempts, j.throttles, j.created_ms), (1, 0, T0));
    s.finish_job(j.seq).await.unwrap();
    assert_eq!(s.next_job_due_ms("fn:a").unwrap(), None);
}

#[tokio::test]
async fn jobs_due_later_are_not_claimed_early() {
    let s = Store::in_memory().unwrap();
    let mut later = job("fn:a", "later");
    later.due_ms = Some(T0 + 5000);
    s.add_jobs(vec![later, job("fn:a", "now")], T0)
        .await
        .unwrap();
    let got = s.claim_jobs("fn:a", 10, T0, T0 + 100).unwrap();
    assert_eq!(
        got.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["now"]
    );
}

#[tokio::test]
async fn jobs_survive_reopening_and_leases_are_released_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nimbus.db");
    {
        let s = Store::open(&path).unwrap();
        s.add_jobs(vec![job("fn:a", "1"), job("rule:x", "2")], T0)
            .await
            .unwrap();
        s.claim_jobs("fn:a", 1, T0, T0 + 900_000).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        nimbus_store::MIGRATIONS.len() as i64
    );
    assert_eq!(s.job_lanes().unwrap(), ["fn:a", "rule:x"]);
    assert_eq!(s.release_leases(T0 + 10).unwrap(), 1);
    assert_eq!(s.claim_jobs("fn:a", 1, T0 + 10, T0 + 20).unwrap().len(), 1);
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place_and_keeps_its_queues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nimbus.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(nimbus_store::MIGRATIONS[0]).unwrap();
        conn.execute(
            "INSERT INTO queues (name, created_ms, attributes) VALUES ('kept', 1, '{}')",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        nimbus_store::MIGRATIONS.len() as i64
    );
    assert_eq!(s.list_queues("").unwrap(), ["kept"]);
    s.add_jobs(vec![job("fn:a", "1")], T0).await.unwrap();
}
