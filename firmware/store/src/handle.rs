//! The async handle: one dedicated thread owns the [`StoreCore`]; callers send it requests.
//!
//! Requests travel over a bounded `std::sync::mpsc::sync_channel` and replies over
//! `tokio::sync::oneshot`. A tokio semaphore with as many permits as the channel has slots is
//! acquired (asynchronously) before each send, so the send never blocks a tokio worker; the
//! permit is released when the storage thread takes the request off the channel. No redb call
//! ever runs on a tokio worker.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread;

use boxidr_model::Secret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tracing::{debug, error};

use crate::backend::BackendFactory;
use crate::core::StoreCore;
use crate::error::{Op, StoreError};
use crate::settings::{SecretKey, SettingKey};
use crate::types::{
    AckOutcome, CompactReport, CursorKey, CursorState, DeadLetter, PageCommit, PageOutcome,
    QueuedRecord, ReadLimits, RecordFilter, Rejection, SinkBatch, SinkId, Stats, StoreOptions,
    UserEntry,
};

/// Requests that may wait in the channel; more callers wait (asynchronously) for a slot.
pub const REQUEST_QUEUE_DEPTH: usize = 64;

type Job = Box<dyn FnOnce(&mut StoreCore) + Send>;

struct Envelope {
    job: Job,
    /// Released when the storage thread dequeues the request.
    _slot: OwnedSemaphorePermit,
}

struct Inner {
    sender: SyncSender<Envelope>,
    slots: Arc<Semaphore>,
    /// Rollbacks of answered commits so far (see [`Store::rollbacks`]).
    rollbacks: watch::Receiver<u64>,
}

/// Cloneable, `Send + Sync` handle to the storage thread. Every method is one request, served
/// in arrival order by the single thread that owns the database.
///
/// The thread stops when [`Store::close`] is called or when the last handle is dropped (it then
/// finishes the requests already queued and closes the database).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Starts the storage thread and opens the database file on it (creating it if new).
    pub async fn open(options: StoreOptions) -> Result<Self, StoreError> {
        Self::spawn_opening(move || StoreCore::open(options)).await
    }

    /// As [`Store::open`], on a custom backend (tests).
    pub async fn open_with_backend(
        options: StoreOptions,
        factory: BackendFactory,
    ) -> Result<Self, StoreError> {
        Self::spawn_opening(move || StoreCore::open_with_backend(options, factory)).await
    }

    /// Starts the storage thread around an already opened core (synchronous callers, tests).
    pub fn from_core(core: StoreCore) -> Result<Self, StoreError> {
        let (store, receiver, rollbacks) = Self::channel();
        spawn_thread(move || Ok(core), receiver, rollbacks, None)?;
        Ok(store)
    }

    async fn spawn_opening(
        open: impl FnOnce() -> Result<StoreCore, StoreError> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (store, receiver, rollbacks) = Self::channel();
        let (opened_tx, opened_rx) = oneshot::channel();
        spawn_thread(open, receiver, rollbacks, Some(opened_tx))?;
        opened_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(store)
    }

    fn channel() -> (Self, Receiver<Envelope>, watch::Sender<u64>) {
        let (sender, receiver) = sync_channel(REQUEST_QUEUE_DEPTH);
        let slots = Arc::new(Semaphore::new(REQUEST_QUEUE_DEPTH));
        let (rollbacks_tx, rollbacks) = watch::channel(0);
        (
            Self {
                inner: Arc::new(Inner {
                    sender,
                    slots,
                    rollbacks,
                }),
            },
            receiver,
            rollbacks_tx,
        )
    }

    /// Changes when a storage error rolled back commits that were already answered (group
    /// commit; see [`StoreError::RolledBack`]). The pipeline watches it: on a change it stops
    /// every task, re-reads its cursors, and calls [`Store::lift_fence`].
    pub fn rollbacks(&self) -> watch::Receiver<u64> {
        self.inner.rollbacks.clone()
    }

    /// See [`StoreCore::lift_fence`].
    pub async fn lift_fence(&self) -> Result<(), StoreError> {
        self.call(Op::Flush, |core| {
            core.lift_fence();
            Ok(())
        })
        .await
    }

    /// See [`StoreCore::flush`]: makes grouped commits durable now.
    pub async fn flush(&self) -> Result<bool, StoreError> {
        self.call(Op::Flush, StoreCore::flush).await
    }

    /// Runs `f` on the storage thread and awaits its reply.
    async fn call<T: Send + 'static>(
        &self,
        op: Op,
        f: impl FnOnce(&mut StoreCore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let slot = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |core: &mut StoreCore| {
            let result = match catch_unwind(AssertUnwindSafe(|| f(core))) {
                Ok(result) => result,
                Err(_) => {
                    error!(%op, "Store request panicked; reopening the database.");
                    let error = StoreError::Panicked { op };
                    core.after_error(&error);
                    Err(error)
                }
            };
            // The caller may have given up waiting (cancelled future): the work is done anyway.
            let _ = reply_tx.send(result);
        });
        match self.inner.sender.try_send(Envelope { job, _slot: slot }) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
            // Impossible while permits == capacity; treat as closed rather than block.
            Err(TrySendError::Full(_)) => return Err(StoreError::Closed),
        }
        reply_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// See [`StoreCore::commit_page`]: events + cursor in one durable transaction.
    pub async fn commit_page(&self, page: PageCommit) -> Result<PageOutcome, StoreError> {
        self.call(Op::CommitPage, move |core| core.commit_page(page))
            .await
    }

    /// See [`StoreCore::read_batch`].
    pub async fn read_batch(
        &self,
        sink: SinkId,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<QueuedRecord>, StoreError> {
        self.call(Op::ReadBatch, move |core| {
            core.read_batch(sink, max_records, max_bytes)
        })
        .await
    }

    /// See [`StoreCore::read_after`].
    pub async fn read_after(
        &self,
        sink: SinkId,
        after: Option<u64>,
        limits: ReadLimits,
        wanted: Option<RecordFilter>,
    ) -> Result<SinkBatch, StoreError> {
        self.call(Op::ReadBatch, move |core| {
            core.read_after(sink, after, limits, wanted.as_ref())
        })
        .await
    }

    /// See [`StoreCore::ack`].
    pub async fn ack(&self, sink: SinkId, up_to_seq: u64) -> Result<AckOutcome, StoreError> {
        self.call(Op::Ack, move |core| core.ack(sink, up_to_seq))
            .await
    }

    /// See [`StoreCore::ack_rejecting`]: the ack and the dead letters in one transaction.
    pub async fn ack_rejecting(
        &self,
        sink: SinkId,
        up_to_seq: u64,
        rejected: Vec<Rejection>,
        now_ms: u64,
    ) -> Result<AckOutcome, StoreError> {
        self.call(Op::Ack, move |core| {
            core.ack_rejecting(sink, up_to_seq, &rejected, now_ms)
        })
        .await
    }

    /// See [`StoreCore::dead_letters`].
    pub async fn dead_letters(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.call(Op::ReadDeadLetters, move |core| {
            core.dead_letters(after, limit)
        })
        .await
    }

    /// See [`StoreCore::remove_dead_letters`].
    pub async fn remove_dead_letters(&self, through_seq: u64) -> Result<u64, StoreError> {
        self.call(Op::RemoveDeadLetters, move |core| {
            core.remove_dead_letters(through_seq)
        })
        .await
    }

    /// See [`StoreCore::set_enabled_sinks`].
    pub async fn set_enabled_sinks(&self, sinks: &[SinkId]) -> Result<u64, StoreError> {
        let sinks = sinks.to_vec();
        self.call(Op::SetEnabledSinks, move |core| {
            core.set_enabled_sinks(&sinks)
        })
        .await
    }

    /// See [`StoreCore::stats`].
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        self.call(Op::Stats, StoreCore::stats).await
    }

    /// See [`StoreCore::cursor`].
    pub async fn cursor(&self, key: CursorKey) -> Result<Option<CursorState>, StoreError> {
        self.call(Op::Cursor, move |core| core.cursor(&key)).await
    }

    /// See [`StoreCore::expire_seen`].
    pub async fn expire_seen(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.call(Op::ExpireSeen, move |core| core.expire_seen(now_ms))
            .await
    }

    /// See [`StoreCore::put_users`].
    pub async fn put_users(&self, users: Vec<UserEntry>) -> Result<(), StoreError> {
        self.call(Op::PutUsers, move |core| core.put_users(&users))
            .await
    }

    /// See [`StoreCore::retain_users`].
    pub async fn retain_users(&self, keep: HashSet<String>) -> Result<u64, StoreError> {
        self.call(Op::RetainUsers, move |core| core.retain_users(&keep))
            .await
    }

    /// See [`StoreCore::begin_users_sync`].
    pub async fn begin_users_sync(&self) -> Result<u64, StoreError> {
        self.call(Op::PutUsers, StoreCore::begin_users_sync).await
    }

    /// See [`StoreCore::prune_users`].
    pub async fn prune_users(&self, generation: u64) -> Result<u64, StoreError> {
        self.call(Op::RetainUsers, move |core| core.prune_users(generation))
            .await
    }

    /// See [`StoreCore::user_reader`].
    pub async fn user_reader(&self) -> Result<crate::UserReader, StoreError> {
        self.call(Op::GetUser, |core| Ok(core.user_reader())).await
    }

    /// See [`StoreCore::get_user`].
    pub async fn get_user(&self, id: String) -> Result<Option<String>, StoreError> {
        self.call(Op::GetUser, move |core| core.get_user(&id)).await
    }

    /// See [`StoreCore::users_after`].
    pub async fn users_after(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<UserEntry>, StoreError> {
        self.call(Op::ListUsers, move |core| {
            core.users_after(after.as_deref(), limit)
        })
        .await
    }

    /// A setting's raw JSON by name, `null` included ([`StoreCore::get_setting`]). Product code
    /// reads through [`Store::setting`] and the names in [`settings`](crate::settings).
    pub async fn get_setting(&self, key: String) -> Result<Option<serde_json::Value>, StoreError> {
        self.call(Op::GetSetting, move |core| core.get_setting(&key))
            .await
    }

    /// Stores a setting's raw JSON by name ([`StoreCore::set_setting`]). Product code writes
    /// through [`Store::put_setting`] and [`Store::clear_setting`].
    pub async fn set_setting(
        &self,
        key: String,
        value: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.call(Op::SetSetting, move |core| core.set_setting(&key, &value))
            .await
    }

    /// A setting's value: `None` when it is unset, cleared (JSON `null`) or of another shape.
    pub async fn setting<T: DeserializeOwned>(
        &self,
        key: SettingKey<T>,
    ) -> Result<Option<T>, StoreError> {
        let value = self.get_setting(key.name().to_owned()).await?;
        Ok(value
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v).ok()))
    }

    /// Stores a setting's value as JSON.
    pub async fn put_setting<T: Serialize>(
        &self,
        key: SettingKey<T>,
        value: &T,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_value(value).map_err(|e| StoreError::InvalidInput {
            op: Op::SetSetting,
            detail: format!("{}: {e}", key.name()),
        })?;
        self.set_setting(key.name().to_owned(), value).await
    }

    /// Clears a setting: stores JSON `null`, which [`Store::setting`] reads as `None`.
    pub async fn clear_setting<T>(&self, key: SettingKey<T>) -> Result<(), StoreError> {
        self.set_setting(key.name().to_owned(), serde_json::Value::Null)
            .await
    }

    /// See [`StoreCore::get_secret`].
    pub async fn get_secret(&self, key: SecretKey) -> Result<Option<Secret>, StoreError> {
        self.call(Op::GetSecret, move |core| core.get_secret(key.name()))
            .await
    }

    /// See [`StoreCore::put_secrets`]: all in one durable transaction.
    pub async fn put_secrets(&self, secrets: Vec<(SecretKey, Secret)>) -> Result<(), StoreError> {
        self.call(Op::PutSecrets, move |core| {
            let named: Vec<(&str, Secret)> =
                secrets.into_iter().map(|(k, s)| (k.name(), s)).collect();
            core.put_secrets(&named)
        })
        .await
    }

    /// See [`StoreCore::delete_secret`].
    pub async fn delete_secret(&self, key: SecretKey) -> Result<bool, StoreError> {
        self.call(Op::DeleteSecret, move |core| core.delete_secret(key.name()))
            .await
    }

    /// See [`StoreCore::add_counter`].
    pub async fn add_counter(&self, name: String, delta: u64) -> Result<u64, StoreError> {
        self.call(Op::AddCounter, move |core| core.add_counter(&name, delta))
            .await
    }

    /// See [`StoreCore::counter`].
    pub async fn counter(&self, name: String) -> Result<u64, StoreError> {
        self.call(Op::GetCounter, move |core| core.counter(&name))
            .await
    }

    /// See [`StoreCore::compact`]. Runs between requests, so no transaction is live.
    pub async fn compact(&self) -> Result<CompactReport, StoreError> {
        self.call(Op::Compact, StoreCore::compact).await
    }

    /// Closes the database and stops the thread; requests already queued behind this one and
    /// all later ones get [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        self.call(Op::Close, StoreCore::close).await
    }
}

fn spawn_thread(
    open: impl FnOnce() -> Result<StoreCore, StoreError> + Send + 'static,
    receiver: Receiver<Envelope>,
    rollbacks: watch::Sender<u64>,
    opened: Option<oneshot::Sender<Result<(), StoreError>>>,
) -> Result<(), StoreError> {
    thread::Builder::new()
        .name("boxidr-store".into())
        .spawn(move || {
            let mut core = match open() {
                Ok(core) => core,
                Err(e) => {
                    if let Some(opened) = opened {
                        let _ = opened.send(Err(e));
                    }
                    return;
                }
            };
            if let Some(opened) = opened {
                let _ = opened.send(Ok(()));
            }
            serve(&mut core, &receiver, &rollbacks);
            if !core.is_closed() {
                if let Err(e) = core.close() {
                    error!(error = %e, "Closing the database failed.");
                }
            }
            debug!("Storage thread stopped.");
        })
        .map(drop)
        .map_err(|source| StoreError::Io {
            op: Op::Open,
            path: "boxidr-store thread".into(),
            source,
        })
}

/// Serves requests in arrival order. With grouped (non-durable) commits pending, waits for the
/// next request only until they are due, then makes them durable (one commit for the group).
fn serve(core: &mut StoreCore, receiver: &Receiver<Envelope>, rollbacks: &watch::Sender<u64>) {
    loop {
        let envelope = match core.flush_due_in() {
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) if due.is_zero() => Err(RecvTimeoutError::Timeout),
            Some(due) => receiver.recv_timeout(due),
        };
        match envelope {
            Ok(Envelope { job, _slot }) => {
                drop(_slot);
                job(core);
                if core.is_closed() {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = core.flush() {
                    error!(error = %e, "Making grouped commits durable failed.");
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if !core.is_open() {
            // A failed request dropped the database: reopen before serving the next one.
            let _ = core.ensure_open();
        }
        let count = core.io_stats().rollbacks;
        rollbacks.send_if_modified(|seen| std::mem::replace(seen, count) != count);
    }
}
