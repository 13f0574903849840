//! Shared helpers for the store's integration tests: events, pages, an in-memory disk that can
//! fail the k-th write/set_len/sync or "lose power" at the k-th sync, and a raw table dump.

#![allow(dead_code, clippy::unwrap_used)] // test support: a panic is a test failure

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::sync::{Arc, Mutex};

use boxidr_model::{BoxEvent, StreamPosition, StreamType};
use boxidr_store::schema;
use boxidr_store::{
    BackendFactory, CursorKey, PageCommit, SinkId, StorageBackend, StoreCore, StoreOptions,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::json;

/// A Box event with the given id (and some nested fields so the JSON is not trivial).
pub fn event(id: &str) -> BoxEvent {
    BoxEvent::from_value(json!({
        "type": "event", "event_id": id, "event_type": "LOGIN",
        "created_at": "2024-05-02T14:03:11-07:00", "ip_address": "198.51.100.23",
        "created_by": {"type": "user", "id": "262196057", "name": "Jö \"quoted\"", "login": "j@example.com"},
        "additional_details": null
    }))
    .expect("valid test event")
}

/// An event with `pad` bytes of filler, to grow the file.
pub fn big_event(id: &str, pad: usize) -> BoxEvent {
    BoxEvent::from_value(json!({"event_id": id, "event_type": "UPLOAD", "pad": "x".repeat(pad)}))
        .expect("valid test event")
}

pub fn pos(text: &str) -> StreamPosition {
    StreamPosition::new(text).expect("valid position")
}

/// A page on the streaming cursor.
pub fn page(ids: &[&str], next: Option<&str>, at: u64) -> PageCommit {
    events_page(ids.iter().map(|id| event(id)).collect(), next, at)
}

/// A page of `events` on the streaming cursor.
pub fn events_page(events: Vec<BoxEvent>, next: Option<&str>, at: u64) -> PageCommit {
    PageCommit {
        cursor: CursorKey::Stream(StreamType::AdminLogsStreaming),
        events,
        next_position: next.map(pos),
        last_created_at: None,
        window: None,
        collected_at_ms: at,
    }
}

pub fn streaming() -> CursorKey {
    CursorKey::Stream(StreamType::AdminLogsStreaming)
}

#[derive(Debug, Default)]
struct DiskState {
    /// Bytes as the OS sees them (every write applied at once).
    live: Vec<u8>,
    /// Bytes made durable by a completed sync.
    durable: Vec<u8>,
    /// Last write to offset 0 (the header) since the previous sync.
    pending_header: Option<Vec<u8>>,
    /// The header write that was in flight when power was lost (issued before the first frozen
    /// sync): it may reach the medium even though that sync never completes.
    crash_header: Option<Vec<u8>>,
    /// Mutating operations so far (write, set_len, sync_data).
    ops: u64,
    syncs: u64,
    /// Fail the mutating operation with this number.
    fail_at: Option<u64>,
    /// After the injected failure, fail every later mutating operation (a crashed process).
    sticky: bool,
    failed: bool,
    /// From this sync number on, syncs no longer advance `durable` (power lost).
    freeze_from: Option<u64>,
}

/// An in-memory disk for redb: injects an I/O error at the k-th mutating operation, or keeps
/// separate live and durable images to simulate power loss (redb `tests/crash_consistency.rs`).
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    state: Arc<Mutex<DiskState>>,
}

impl MemDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk whose live and durable contents are `bytes`.
    pub fn from_image(bytes: Vec<u8>) -> Self {
        let disk = Self::default();
        {
            let mut s = disk.state.lock().unwrap();
            s.durable = bytes.clone();
            s.live = bytes;
        }
        disk
    }

    pub fn ops(&self) -> u64 {
        self.state.lock().unwrap().ops
    }

    pub fn syncs(&self) -> u64 {
        self.state.lock().unwrap().syncs
    }

    /// Fails mutating operation number `op` (counted from the disk's creation).
    pub fn fail_at(&self, op: u64, sticky: bool) {
        let mut s = self.state.lock().unwrap();
        s.fail_at = Some(op);
        s.sticky = sticky;
    }

    pub fn has_failed(&self) -> bool {
        self.state.lock().unwrap().failed
    }

    /// Stops faults: the medium is healthy again.
    pub fn heal(&self) {
        let mut s = self.state.lock().unwrap();
        s.fail_at = None;
        s.failed = false;
        s.sticky = false;
    }

    pub fn freeze_from_sync(&self, sync: u64) {
        self.state.lock().unwrap().freeze_from = Some(sync);
    }

    /// What survives a process crash: everything written (the OS page cache survives).
    pub fn live_image(&self) -> Vec<u8> {
        self.state.lock().unwrap().live.clone()
    }

    /// What survives a power cut: the durable bytes only.
    pub fn durable_image(&self) -> Vec<u8> {
        self.state.lock().unwrap().durable.clone()
    }

    /// Power cut during the first frozen sync in which the header write issued before that sync
    /// reached the medium but nothing else did (redb `tests/crash_consistency.rs`).
    pub fn durable_image_with_header(&self) -> Vec<u8> {
        let s = self.state.lock().unwrap();
        let mut image = s.durable.clone();
        if let Some(header) = &s.crash_header {
            if image.len() >= header.len() {
                image[..header.len()].copy_from_slice(header);
            }
        }
        image
    }

    pub fn factory(&self) -> BackendFactory {
        let disk = self.clone();
        Arc::new(move || Arc::new(disk.clone()) as Arc<dyn StorageBackend>)
    }

    fn mutate(&self) -> io::Result<std::sync::MutexGuard<'_, DiskState>> {
        let mut s = self.state.lock().unwrap();
        s.ops += 1;
        if s.failed && s.sticky {
            return Err(io::Error::other("injected: disk gone after crash"));
        }
        if s.fail_at == Some(s.ops) {
            s.failed = true;
            return Err(io::Error::other("injected EIO"));
        }
        Ok(s)
    }
}

impl StorageBackend for MemDisk {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state.lock().unwrap().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let s = self.state.lock().unwrap();
        let offset = usize::try_from(offset).unwrap();
        if offset + out.len() > s.live.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        out.copy_from_slice(&s.live[offset..offset + out.len()]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.mutate()?;
        s.live.resize(usize::try_from(len).unwrap(), 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.mutate()?;
        s.syncs += 1;
        if s.freeze_from.is_none_or(|f| s.syncs < f) {
            s.durable = s.live.clone();
        } else if s.freeze_from == Some(s.syncs) {
            s.crash_header = s.pending_header.clone();
        }
        s.pending_header = None;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.mutate()?;
        let offset = usize::try_from(offset).unwrap();
        if offset + data.len() > s.live.len() {
            s.live.resize(offset + data.len(), 0);
        }
        s.live[offset..offset + data.len()].copy_from_slice(data);
        if offset == 0 {
            s.pending_header = Some(data.to_vec());
        }
        Ok(())
    }
}

/// Options for in-memory tests (path is only a label). Every commit is durable on its own
/// (no group commit), so "Ok" means "on the medium"; the group-commit tests set an interval.
pub fn mem_options() -> StoreOptions {
    let mut options = StoreOptions::new("/mem/boxidr.redb");
    options.quota_bytes = u64::MAX;
    options.commit_interval = std::time::Duration::ZERO;
    options
}

/// Opens a store core on `disk`.
pub fn open_mem(disk: &MemDisk) -> StoreCore {
    StoreCore::open_with_backend(mem_options(), disk.factory()).expect("open in-memory store")
}

/// Opens a store core on `disk` delivering to `sinks`, with `first` committed.
pub fn open_mem_queue(disk: &MemDisk, sinks: &[SinkId], first: PageCommit) -> StoreCore {
    let mut core = open_mem(disk);
    core.set_enabled_sinks(sinks).unwrap();
    core.commit_page(first).unwrap();
    core
}

/// Every durable table of a store, keys and values rendered with Debug, by table name.
pub type Dump = BTreeMap<&'static str, Vec<(String, String)>>;

fn dump_table<K, V>(
    read: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> Vec<(String, String)>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let Ok(table) = read.open_table(def) else {
        return Vec::new();
    };
    table
        .iter()
        .unwrap()
        .map(|entry| {
            let (k, v) = entry.unwrap();
            (format!("{:?}", k.value()), format!("{:?}", v.value()))
        })
        .collect()
}

/// Dumps the store tables from raw bytes (opening runs redb's repair if needed).
pub fn dump_image(image: Vec<u8>) -> Dump {
    let db = Database::builder()
        .create_with_backend(MemDisk::from_image(image))
        .expect("image opens");
    dump_db(&db)
}

pub fn dump_db(db: &Database) -> Dump {
    let read = db.begin_read().unwrap();
    let mut out = Dump::new();
    out.insert("meta", dump_table(&read, schema::META));
    out.insert("queue", dump_table(&read, schema::QUEUE));
    out.insert("cursors", dump_table(&read, schema::CURSORS));
    out.insert("seen_at", dump_table(&read, schema::SEEN_AT));
    out.insert("seen", dump_table(&read, schema::SEEN));
    out.insert("seen_by_time", dump_table(&read, schema::SEEN_BY_TIME));
    out.insert("sink_cursors", dump_table(&read, schema::SINK_CURSORS));
    out.insert("sinks_enabled", dump_table(&read, schema::SINKS_ENABLED));
    out.insert("counters", dump_table(&read, schema::COUNTERS));
    out.insert("users", dump_table(&read, schema::USERS));
    out
}

/// The dump without the statistics counters and the commit count (which legitimately differ
/// after a retry).
pub fn without_counters(mut dump: Dump) -> Dump {
    dump.remove("counters");
    if let Some(meta) = dump.get_mut("meta") {
        meta.retain(|(key, _)| key != &format!("{:?}", schema::META_COMMIT_COUNT));
    }
    dump
}

/// Dumps the current state of a live disk by copying its bytes.
pub fn dump_disk(disk: &MemDisk) -> Dump {
    dump_image(disk.live_image())
}

/// Reads `key` from `meta` in a raw database.
pub fn meta_value(db: &Database, key: &str) -> Option<u64> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(schema::META).ok()?;
    table.get(key).unwrap().map(|g| g.value())
}

/// Pretty-prints the difference of two dumps for assertion messages.
pub fn diff(a: &Dump, b: &Dump) -> String {
    let mut out = String::new();
    for (name, rows) in a {
        let other = b.get(name).cloned().unwrap_or_default();
        if rows != &other {
            out.push_str(&format!("{name}: {rows:?}\n   vs {other:?}\n"));
        }
    }
    out
}

pub fn debug<T: Debug>(value: &T) -> String {
    format!("{value:?}")
}
