//! The forwarding loop's own logic against a scripted [`Sink`] (no sockets): the store cursor
//! moves past the delivered prefix only, a configuration error stops the sink with its queue
//! kept, and on shutdown what is on the wire gets its grace period and is acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boxidr_forward::{Delivery, Rendered, Sink, SinkError, SinkState, Window};
use boxidr_store::{SinkId, Store};
use common::*;
use tokio::sync::watch;

/// What the sink answers to the loop's next [`Sink::progress`].
enum Step {
    /// Delivers the next `deliver` outstanding records, then reports `error` if any.
    Deliver {
        deliver: usize,
        error: Option<SinkError>,
    },
    /// Delivers nothing until shutdown is requested, then everything outstanding.
    UntilShutdown,
    /// Never delivers anything.
    Never,
}

/// What the sink saw.
#[derive(Debug, Default)]
struct Log {
    /// Every record handed over, in order (a record sent again appears again).
    submitted: Vec<u64>,
    /// `submitted.len()` when the script reported its first error.
    at_error: Option<usize>,
    resets: usize,
    closed: bool,
}

/// A sink that delivers as its script says; with the script done, it delivers everything.
struct Scripted {
    script: VecDeque<Step>,
    log: Arc<Mutex<Log>>,
    /// Submitted, not yet delivered: each record's seq and the `through` of its batch.
    outstanding: VecDeque<(u64, u64)>,
    shutdown: watch::Receiver<bool>,
}

impl Scripted {
    fn new(script: Vec<Step>, log: Arc<Mutex<Log>>, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            script: script.into(),
            log,
            outstanding: VecDeque::new(),
            shutdown,
        }
    }

    /// Delivers the next `n` outstanding records: through the batch's `through` when the
    /// last of a batch is among them.
    fn deliver(&mut self, n: usize) -> Delivery {
        let mut delivery = Delivery::default();
        for _ in 0..n.min(self.outstanding.len()) {
            let (seq, through) = self.outstanding.pop_front().unwrap();
            let last_of_batch = self.outstanding.front().is_none_or(|&(_, t)| t != through);
            delivery.through = Some(if last_of_batch { through } else { seq });
            delivery.sent += 1;
        }
        delivery
    }
}

impl Sink for Scripted {
    fn id(&self) -> SinkId {
        SinkId::LogSearch
    }

    fn window(&self) -> Window {
        Window {
            records: 100,
            bytes: usize::MAX,
        }
    }

    fn submit(&mut self, batch: Vec<Rendered>, through: u64) {
        let mut log = self.log.lock().unwrap();
        for record in batch {
            assert!(
                record.line.is_some(),
                "every record has a line for Log Search"
            );
            log.submitted.push(record.seq);
            self.outstanding.push_back((record.seq, through));
        }
    }

    async fn progress(&mut self) -> Delivery {
        // Cancel-safe: a step is taken off the script only once it answers.
        match self.script.front() {
            Some(Step::Never) => std::future::pending().await,
            Some(Step::UntilShutdown) => {
                let _ = self.shutdown.wait_for(|stop| *stop).await;
                self.script.pop_front();
                self.deliver(usize::MAX)
            }
            Some(Step::Deliver { .. }) => {
                let Some(Step::Deliver { deliver, error }) = self.script.pop_front() else {
                    unreachable!()
                };
                let mut delivery = self.deliver(deliver);
                if error.is_some() {
                    let mut log = self.log.lock().unwrap();
                    let at = log.submitted.len();
                    log.at_error.get_or_insert(at);
                }
                delivery.error = error;
                delivery
            }
            None => self.deliver(usize::MAX),
        }
    }

    fn reset(&mut self) {
        self.outstanding.clear();
        self.log.lock().unwrap().resets += 1;
    }

    async fn close(&mut self) {
        self.log.lock().unwrap().closed = true;
    }
}

/// A store holding `n` Box events for Log Search.
async fn queue_of(n: usize) -> (Store, tempfile::TempDir) {
    let (store, dir) = store_for(&[SinkId::LogSearch]).await;
    seed(&store, &ids("s-", n), "DOWNLOAD").await;
    (store, dir)
}

/// Runs a forwarder over `store` with a sink following `script`.
fn start(store: &Store, script: Vec<Step>, shutdown_grace: Duration) -> (Running, Arc<Mutex<Log>>) {
    let options = boxidr_forward::ForwarderOptions {
        shutdown_grace,
        ..options(4)
    };
    let log = Arc::<Mutex<Log>>::default();
    let run = spawn_with(store, options, |shutdown| {
        Scripted::new(script, log.clone(), shutdown)
    });
    (run, log)
}

/// A transient failure after part of a batch: the delivered prefix is acknowledged and never
/// sent again; the rest is sent again from the first record not delivered, and all arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_delivered_prefix_is_acknowledged() {
    let (store, _dir) = queue_of(10).await;
    let script = vec![Step::Deliver {
        deliver: 3,
        error: Some(SinkError::transient("connection reset")),
    }];
    let (run, log) = start(&store, script, Duration::from_secs(2));
    caught_up(&store, SinkId::LogSearch).await;
    let status = run.stop().await;
    let log = log.lock().unwrap();
    let first = log.submitted[0];
    let times = |seq: u64| log.submitted.iter().filter(|&&s| s == seq).count();
    for seq in first..first + 3 {
        assert_eq!(
            times(seq),
            1,
            "delivered before the failure: sent once ({log:?})"
        );
    }
    assert_eq!(
        times(first + 3),
        2,
        "the first undelivered record is sent again"
    );
    for seq in first..first + 10 {
        assert!(times(seq) >= 1, "seq {seq} was sent ({log:?})");
    }
    assert_eq!(log.resets, 1);
    assert_eq!(status.delivered, 10, "{status:?}");
    assert_eq!(status.state, SinkState::Stopped);
    assert!(log.closed);
}

/// A configuration error stops the sink: the prefix delivered before it is acknowledged,
/// nothing more is sent, the rest stays queued, and the status says why until shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_stops_the_sink_and_keeps_the_queue() {
    let (store, _dir) = queue_of(10).await;
    let script = vec![Step::Deliver {
        deliver: 2,
        error: Some(SinkError::Config {
            reason: "the log token is not known to InsightIDR".into(),
        }),
    }];
    let (run, log) = start(&store, script, Duration::from_secs(2));
    let mut status = run.status.clone();
    status
        .wait_for(|s| matches!(s.state, SinkState::ConfigError { .. }))
        .await
        .unwrap();
    wait_until("the delivered prefix acknowledged", async || {
        pending(&store, SinkId::LogSearch).await == 8
    })
    .await;
    let status = run.stop().await;
    assert!(
        matches!(&status.state, SinkState::ConfigError { reason } if reason.contains("log token")),
        "{status:?}"
    );
    assert_eq!(
        pending(&store, SinkId::LogSearch).await,
        8,
        "the rest is kept"
    );
    let log = log.lock().unwrap();
    assert_eq!(
        Some(log.submitted.len()),
        log.at_error,
        "nothing sent after the error: {log:?}"
    );
    assert_eq!(log.resets, 1);
    assert!(log.closed);
}

/// Shutdown while records are on the wire: the sink's deliveries during the grace period are
/// acknowledged before the loop stops and closes the sink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_acknowledges_what_arrives_within_the_grace() {
    let (store, _dir) = queue_of(10).await;
    let (run, log) = start(&store, vec![Step::UntilShutdown], Duration::from_secs(10));
    wait_until("every record on the wire", async || {
        log.lock().unwrap().submitted.len() == 10
    })
    .await;
    assert_eq!(pending(&store, SinkId::LogSearch).await, 10);
    let status = run.stop().await;
    assert_eq!(pending(&store, SinkId::LogSearch).await, 0, "{status:?}");
    assert_eq!(status.delivered, 10);
    assert_eq!(status.state, SinkState::Stopped);
    assert!(log.lock().unwrap().closed);
}

/// Shutdown while the sink never answers: the loop stops once the grace is over, closes the
/// sink and acknowledges nothing (the records stay queued for the next start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_after_the_grace() {
    let (store, _dir) = queue_of(10).await;
    let (run, log) = start(&store, vec![Step::Never], Duration::from_millis(200));
    wait_until("every record on the wire", async || {
        log.lock().unwrap().submitted.len() == 10
    })
    .await;
    let status = run.stop().await;
    assert_eq!(pending(&store, SinkId::LogSearch).await, 10);
    assert_eq!(status.delivered, 0);
    assert_eq!(status.state, SinkState::Stopped);
    assert!(log.lock().unwrap().closed);
}
