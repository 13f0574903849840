//! Model-based test (vector disk_v2 style): random sequences of commit_page, read_batch, ack,
//! set_enabled_sinks and reopen run against the real store and a `BTreeMap` reference model;
//! queue contents, cursors and sink cursors must always agree.

// Test crate: helpers outside #[test] fns may unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use boxidr_store::{CursorUpdate, SinkId, StoreCore};
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    /// Ids from a small alphabet so duplicates are frequent; position None, reset "0" or n.
    Commit {
        ids: Vec<u8>,
        position: Option<u16>,
    },
    Read {
        sink: SinkId,
        max: usize,
    },
    /// Ack `back` records behind the newest seq (may be stale, i.e. behind the cursor).
    Ack {
        sink: SinkId,
        back: u64,
    },
    Enable {
        collector: bool,
        log_search: bool,
    },
    Reopen,
}

fn sink() -> impl Strategy<Value = SinkId> {
    prop_oneof![Just(SinkId::Collector), Just(SinkId::LogSearch)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (prop::collection::vec(0u8..40, 0..6), prop::option::of(0u16..5))
            .prop_map(|(ids, position)| Action::Commit { ids, position }),
        3 => (sink(), 0usize..5).prop_map(|(sink, max)| Action::Read { sink, max }),
        3 => (sink(), 0u64..4).prop_map(|(sink, back)| Action::Ack { sink, back }),
        1 => (any::<bool>(), any::<bool>())
            .prop_map(|(collector, log_search)| Action::Enable { collector, log_search }),
        1 => Just(Action::Reopen),
    ]
}

#[derive(Debug, Default)]
struct Model {
    queue: BTreeMap<u64, String>,
    seen: BTreeSet<String>,
    next_seq: u64,
    cursor: Option<String>,
    sinks: BTreeMap<SinkId, u64>,
    enabled: BTreeSet<SinkId>,
}

impl Model {
    fn new() -> Self {
        Self {
            next_seq: 1,
            ..Self::default()
        }
    }

    fn purge(&mut self) {
        let Some(floor) = self
            .enabled
            .iter()
            .map(|s| self.sinks.get(s).copied().unwrap_or(0))
            .min()
        else {
            return;
        };
        self.queue.retain(|&seq, _| seq > floor);
    }

    fn pending(&self, sink: SinkId) -> Vec<(u64, String)> {
        let cursor = self.sinks.get(&sink).copied().unwrap_or(0);
        self.queue
            .range(cursor + 1..)
            .map(|(s, id)| (*s, id.clone()))
            .collect()
    }
}

fn check(core: &mut StoreCore, model: &Model) {
    for sink in SinkId::ALL {
        let records = core.read_batch(sink, usize::MAX, usize::MAX).unwrap();
        let got: Vec<(u64, String)> = records
            .iter()
            .map(|r| (r.seq, r.event_id.to_string()))
            .collect();
        assert_eq!(got, model.pending(sink), "pending for {sink}");
    }
    let stats = core.stats().unwrap();
    assert_eq!(stats.queue_records, model.queue.len() as u64);
    assert_eq!(stats.oldest_seq, model.queue.keys().next().copied());
    assert_eq!(stats.newest_seq, model.queue.keys().next_back().copied());
    for s in &stats.pending_per_sink {
        assert_eq!(
            s.cursor,
            model.sinks.get(&s.sink).copied().unwrap_or(0),
            "{:?}",
            s.sink
        );
        assert_eq!(s.enabled, model.enabled.contains(&s.sink));
        assert_eq!(
            s.pending,
            model.pending(s.sink).len() as u64,
            "{:?}",
            s.sink
        );
    }
    let cursor = core
        .cursor(&streaming())
        .unwrap()
        .and_then(|c| c.position.map(|p| p.as_str().to_owned()));
    assert_eq!(cursor, model.cursor);
}

fn apply(core: &mut StoreCore, disk: &MemDisk, model: &mut Model, action: &Action, t: u64) {
    match action {
        Action::Commit { ids, position } => {
            let ids: Vec<String> = ids.iter().map(|i| format!("id{i}")).collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let position = position.map(|p| p.to_string());
            let outcome = core
                .commit_page(page(&refs, position.as_deref(), t))
                .unwrap();
            let mut appended = 0;
            for id in &ids {
                if model.seen.insert(id.clone()) {
                    model.queue.insert(model.next_seq, id.clone());
                    model.next_seq += 1;
                    appended += 1;
                }
            }
            assert_eq!(outcome.appended, appended);
            assert_eq!(outcome.duplicates, ids.len() as u64 - appended);
            match position.as_deref() {
                Some("0") => assert_eq!(outcome.cursor, CursorUpdate::KeptReset),
                Some(p) => model.cursor = Some(p.to_owned()),
                None => assert_eq!(outcome.cursor, CursorUpdate::KeptNoPosition),
            }
        }
        Action::Read { sink, max } => {
            let got = core.read_batch(*sink, *max, usize::MAX).unwrap();
            let want: Vec<u64> = model
                .pending(*sink)
                .iter()
                .take(*max)
                .map(|(s, _)| *s)
                .collect();
            assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
        }
        Action::Ack { sink, back } => {
            let newest = model.next_seq - 1;
            let up_to = newest.saturating_sub(*back);
            let old = model.sinks.get(sink).copied().unwrap_or(0);
            let outcome = core.ack(*sink, up_to).unwrap();
            assert_eq!(outcome.advanced, up_to > old);
            if up_to > old {
                model.sinks.insert(*sink, up_to);
                let before = model.queue.len();
                model.purge();
                assert_eq!(outcome.deleted, (before - model.queue.len()) as u64);
            }
            assert_eq!(outcome.cursor, up_to.max(old));
        }
        Action::Enable {
            collector,
            log_search,
        } => {
            let mut sinks = Vec::new();
            if *collector {
                sinks.push(SinkId::Collector);
            }
            if *log_search {
                sinks.push(SinkId::LogSearch);
            }
            core.set_enabled_sinks(&sinks).unwrap();
            model.enabled = sinks.into_iter().collect();
            model.purge();
        }
        Action::Reopen => {
            core.close().unwrap();
            *core = open_mem(disk);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The store behaves like the reference model under any sequence of operations and reopens.
    #[test]
    fn store_matches_model(actions in prop::collection::vec(action(), 1..40)) {
        let disk = MemDisk::new();
        let mut core = open_mem(&disk);
        let mut model = Model::new();
        for (t, action) in actions.iter().enumerate() {
            apply(&mut core, &disk, &mut model, action, t as u64);
            check(&mut core, &model);
        }
    }
}
