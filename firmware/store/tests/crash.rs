//! Crash consistency of the store's transactions (RELIABILITY.md §6 scenarios 2, 4 and 7).
//!
//! A fault-injecting `StorageBackend` (`MemDisk`) fails the k-th write, set_len or sync of one
//! `commit_page` and of one `ack`, for every k. The surviving bytes are reopened, and the store's
//! tables must equal exactly the state before the operation or exactly the state after it, never
//! a mix (an event queued without its cursor, a cursor without its events, a sink cursor moved
//! without the deletes, half a page). The power-loss variant freezes the durable image at every
//! sync index (redb `tests/crash_consistency.rs` pattern) instead of failing an operation.

// Test crate: helpers outside #[test] fns may unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use boxidr_store::{PageCommit, SinkId, Store, StoreCore, StoreError, StoreOptions, UserEntry};
use common::*;

/// Commit modes under test: the defaults (2PC + quick-repair) and plain 1PC + checksum.
fn modes() -> [(&'static str, StoreOptions); 3] {
    let defaults = mem_options();
    let mut two_phase = mem_options();
    two_phase.quick_repair = false;
    two_phase.two_phase_commit = true;
    let mut one_phase = mem_options();
    one_phase.quick_repair = false;
    one_phase.two_phase_commit = false;
    [
        ("defaults", defaults),
        ("2pc", two_phase),
        ("1pc", one_phase),
    ]
}

/// The baseline every run starts from: two committed pages, both sinks enabled, one partial ack.
fn baseline(disk: &MemDisk, options: &StoreOptions) -> StoreCore {
    let mut core = StoreCore::open_with_backend(options.clone(), disk.factory()).unwrap();
    core.set_enabled_sinks(&[SinkId::Collector, SinkId::LogSearch])
        .unwrap();
    core.commit_page(page(&["a", "b", "c"], Some("100"), 1_000))
        .unwrap();
    core.commit_page(page(&["d", "e"], Some("200"), 2_000))
        .unwrap();
    core.ack(SinkId::Collector, 4).unwrap();
    core.put_users(&baseline_users()).unwrap();
    core
}

/// Thirty stored users (the users sync's directory) for the prune target.
fn baseline_users() -> Vec<UserEntry> {
    (0..30)
        .map(|i| UserEntry {
            id: format!("{}", 3_000_000_000_u64 + i),
            json: format!(
                r#"{{"id":"{i}","login":"user{i}@example.com","pad":"{}"}}"#,
                "x".repeat(200)
            ),
        })
        .collect()
}

/// The users a complete sync still saw: every third baseline user (the rest are pruned).
fn kept_users() -> HashSet<String> {
    baseline_users()
        .into_iter()
        .step_by(3)
        .map(|u| u.id)
        .collect()
}

/// The page under test: new events, a duplicate, and enough bytes to grow the file.
fn target_page() -> PageCommit {
    let mut p = page(&["b"], Some("300"), 3_000);
    for i in 0..40 {
        p.events.push(big_event(&format!("f{i}"), 3_000));
    }
    p
}

/// An operation under test.
#[derive(Clone, Copy, Debug)]
enum Target {
    CommitPage,
    Ack,
    RetainUsers,
}

fn run(target: Target, core: &mut StoreCore) -> Result<(), StoreError> {
    match target {
        Target::CommitPage => core.commit_page(target_page()).map(drop),
        // Log Search catches up to 4: records 1..=4 are deleted in the same transaction.
        Target::Ack => core.ack(SinkId::LogSearch, 4).map(drop),
        Target::RetainUsers => core.retain_users(&kept_users()).map(drop),
    }
}

/// Pre and post dumps of a fault-free run, and the disk-operation window of the target.
struct Reference {
    pre: Dump,
    post: Dump,
    ops_before: u64,
    ops_in_target: u64,
    syncs_before: u64,
    syncs_in_target: u64,
}

fn reference(target: Target, options: &StoreOptions) -> Reference {
    let disk = MemDisk::new();
    let mut core = baseline(&disk, options);
    let pre = dump_disk(&disk);
    let (ops_before, syncs_before) = (disk.ops(), disk.syncs());
    run(target, &mut core).unwrap();
    let (ops_after, syncs_after) = (disk.ops(), disk.syncs());
    let post = dump_disk(&disk);
    assert_ne!(pre, post, "the target operation must change something");
    Reference {
        pre,
        post,
        ops_before,
        ops_in_target: ops_after - ops_before,
        syncs_before,
        syncs_in_target: syncs_after - syncs_before,
    }
}

/// Opens the store on `image` (it must open, repairing if needed) and dumps its tables.
fn reopen_and_dump(image: Vec<u8>, what: &str) -> Dump {
    let disk = MemDisk::from_image(image.clone());
    let mut core = StoreCore::open_with_backend(mem_options(), disk.factory())
        .unwrap_or_else(|e| panic!("{what}: store does not reopen: {e}"));
    core.stats()
        .unwrap_or_else(|e| panic!("{what}: stats after reopen: {e}"));
    core.close().unwrap();
    dump_disk(&disk)
}

#[derive(Debug, Default)]
struct Tally {
    pre: u32,
    post: u32,
}

fn classify(reference: &Reference, state: &Dump, what: &str, tally: &mut Tally) {
    if *state == reference.pre {
        tally.pre += 1;
    } else if *state == reference.post {
        tally.post += 1;
    } else {
        panic!(
            "{what}: state is neither pre nor post\nvs pre:\n{}\nvs post:\n{}",
            diff(state, &reference.pre),
            diff(state, &reference.post)
        );
    }
}

/// Process crash at every disk operation of the target: the surviving (page-cache) bytes
/// reopen to exactly the pre- or the post-operation state.
fn crash_at_every_op(target: Target) {
    for (mode, options) in modes() {
        crash_at_every_op_in(target, mode, &options);
    }
}

fn crash_at_every_op_in(target: Target, mode: &str, options: &StoreOptions) {
    let reference = reference(target, options);
    assert!(
        reference.ops_in_target > 2,
        "{target:?}: too few ops to be meaningful"
    );
    let mut tally = Tally::default();
    for k in 1..=reference.ops_in_target {
        let disk = MemDisk::new();
        let mut core = baseline(&disk, options);
        assert_eq!(
            disk.ops(),
            reference.ops_before,
            "baseline is not deterministic"
        );
        disk.fail_at(reference.ops_before + k, true);
        let result = run(target, &mut core);
        assert!(disk.has_failed(), "{target:?} k={k}: fault not reached");
        if let Err(e) = &result {
            assert!(e.is_retryable(), "{target:?} k={k}: {e} is not retryable");
        }
        drop(core);
        let what = format!(
            "{mode} {target:?} crash at op {k}/{}",
            reference.ops_in_target
        );
        let state = reopen_and_dump(disk.live_image(), &what);
        classify(&reference, &state, &what, &mut tally);
        // An Ok return means the commit completed: its state must be the post state.
        if result.is_ok() {
            assert_eq!(state, reference.post, "{what}: Ok but not committed");
        }
    }
    assert!(
        tally.pre > 0 && tally.post > 0,
        "{target:?}: both outcomes expected: {tally:?}"
    );
    println!(
        "PROOF {}",
        serde_json::json!({
            "figure": format!(
                "{mode} {target:?}: crash at each of {} ops → {} pre, {} post, 0 mixed",
                reference.ops_in_target, tally.pre, tally.post
            ),
            "crash_points": reference.ops_in_target,
        })
    );
}

/// Power loss at every sync of the target: the durable image (with and without the last
/// header write reaching the medium) reopens to exactly the pre- or post-operation state.
fn power_loss_at_every_sync(target: Target) {
    for (mode, options) in modes() {
        power_loss_at_every_sync_in(target, mode, &options);
    }
}

fn power_loss_at_every_sync_in(target: Target, mode: &str, options: &StoreOptions) {
    let reference = reference(target, options);
    assert!(reference.syncs_in_target >= 1);
    let mut tally = Tally::default();
    let mut header_cases = 0;
    for s in 1..=reference.syncs_in_target + 1 {
        let disk = MemDisk::new();
        let mut core = baseline(&disk, options);
        disk.freeze_from_sync(reference.syncs_before + s);
        run(target, &mut core).unwrap();
        let images = [
            ("durable", disk.durable_image()),
            ("durable+header", disk.durable_image_with_header()),
        ];
        if images[0].1 != images[1].1 {
            header_cases += 1;
        }
        // Leak nothing into the images: the process "dies" after taking them.
        drop(core);
        for (kind, image) in images {
            let what = format!("{mode} {target:?} power loss from sync {s} ({kind})");
            let state = reopen_and_dump(image, &what);
            classify(&reference, &state, &what, &mut tally);
            if s > reference.syncs_in_target {
                assert_eq!(
                    state, reference.post,
                    "{what}: all syncs done but not durable"
                );
            }
        }
    }
    assert!(
        tally.pre > 0 && tally.post > 0,
        "{target:?}: both outcomes expected: {tally:?}"
    );
    assert!(
        header_cases > 0,
        "{mode} {target:?}: no header write was ever in flight"
    );
    println!(
        "PROOF {}",
        serde_json::json!({
            "figure": format!(
                "{mode} {target:?}: power loss at each of {} syncs (x2 header cases) → {} pre, {} post, 0 mixed",
                reference.syncs_in_target + 1, tally.pre, tally.post
            ),
            "power_cuts": reference.syncs_in_target + 1,
        })
    );
}

/// A process crash at any disk operation of commit_page leaves exactly pre or post state.
#[test]
fn commit_page_crash_at_every_op_is_atomic() {
    crash_at_every_op(Target::CommitPage);
}

/// A process crash at any disk operation of an ack (cursor + deletes) leaves pre or post state.
#[test]
fn ack_crash_at_every_op_is_atomic() {
    crash_at_every_op(Target::Ack);
}

/// Power loss at any sync of a file-growing commit_page leaves exactly pre or post state.
#[test]
fn commit_page_power_loss_at_every_sync_is_atomic() {
    power_loss_at_every_sync(Target::CommitPage);
}

/// Power loss at any sync of an ack leaves exactly pre or post state.
#[test]
fn ack_power_loss_at_every_sync_is_atomic() {
    power_loss_at_every_sync(Target::Ack);
}

/// A process crash at any disk operation of a users prune removes all the users Box no longer
/// lists or none of them: the directory is never left half-pruned.
#[test]
fn retain_users_crash_at_every_op_is_atomic() {
    crash_at_every_op(Target::RetainUsers);
}

/// Power loss at any sync of a users prune leaves exactly pre or post state.
#[test]
fn retain_users_power_loss_at_every_sync_is_atomic() {
    power_loss_at_every_sync(Target::RetainUsers);
}

/// A one-off I/O error at any op of commit_page: the store reopens the database, the retry of
/// the same page succeeds, and the final state equals a clean run (no loss, no duplicate).
#[test]
fn transient_error_then_retry_converges_at_every_op() {
    let options = mem_options();
    let reference = reference(Target::CommitPage, &options);
    for k in 1..=reference.ops_in_target {
        let disk = MemDisk::new();
        let mut core = baseline(&disk, &options);
        disk.fail_at(reference.ops_before + k, false);
        let first = run(Target::CommitPage, &mut core);
        if let Err(e) = &first {
            assert!(e.is_retryable(), "k={k}: {e}");
            assert_eq!(core.reopens(), 1, "k={k}: database was not reopened");
            let outcome = core
                .commit_page(target_page())
                .unwrap_or_else(|e| panic!("k={k}: retry: {e}"));
            // If the failed commit had in fact become durable, the retry only finds duplicates.
            assert!(
                outcome.appended == 40 || outcome.appended == 0,
                "k={k}: {outcome:?}"
            );
        }
        core.close().unwrap();
        assert_eq!(
            without_counters(dump_disk(&disk)),
            without_counters(reference.post.clone()),
            "k={k}"
        );
    }
}

/// Through the async handle: the first commit fails with an I/O error, the storage thread
/// reopens the database, the retried commit succeeds and no event is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_reopens_after_commit_error() {
    let options = mem_options();
    let disk = MemDisk::new();
    let core = baseline(&disk, &options);
    let store = Store::from_core(core).unwrap();
    // Fail the last op of the next commit (the commit's final fsync).
    let reference = reference(Target::CommitPage, &options);
    disk.fail_at(reference.ops_before + reference.ops_in_target, false);
    let err = store.commit_page(target_page()).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.reopens, 1);
    store.commit_page(target_page()).await.unwrap();
    store
        .commit_page(page(&["g"], Some("400"), 4_000))
        .await
        .unwrap();
    let records = store
        .read_batch(SinkId::LogSearch, usize::MAX, usize::MAX)
        .await
        .unwrap();
    let ids: Vec<String> = records.iter().map(|r| r.event_id.to_string()).collect();
    let mut expected: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    expected.extend((0..40).map(|i| format!("f{i}")));
    expected.push("g".into());
    assert_eq!(ids, expected);
    let cursor = store.cursor(streaming()).await.unwrap().unwrap();
    assert_eq!(cursor.position.unwrap().as_str(), "400");
}

// ---------------------------------------------------------------------------------------------
// Group commit: several page commits, acks and users writes share one durable commit.

/// A group-commit mode: the interval is long enough that only the first write after the open
/// and the explicit flush are durable, everything between is one group.
fn group_modes() -> Vec<(&'static str, StoreOptions)> {
    modes()
        .into_iter()
        .map(|(name, mut options)| {
            options.commit_interval = std::time::Duration::from_secs(3600);
            (name, options)
        })
        .collect()
}

/// The baseline, made durable (it is the state every grouped run starts from).
fn group_baseline(disk: &MemDisk, options: &StoreOptions) -> StoreCore {
    let mut core = baseline(disk, options);
    core.flush().unwrap();
    core
}

/// One step of the grouped workload.
fn group_step(core: &mut StoreCore, step: usize) -> Result<(), StoreError> {
    match step {
        0 => core.commit_page(target_page()).map(drop),
        1 => core.ack(SinkId::LogSearch, 6).map(drop),
        2 => core
            .commit_page(page(&["g", "h"], Some("400"), 4_000))
            .map(drop),
        3 => core.ack(SinkId::Collector, 30).map(drop),
        4 => core.put_users(&baseline_users()[..3]).map(drop),
        5 => core.flush().map(drop),
        _ => unreachable!(),
    }
}

const GROUP_STEPS: usize = 6;

/// The logical state after each prefix of the workload (from a run where every commit is
/// durable), without the commit count.
fn group_prefix_states() -> Vec<Dump> {
    let disk = MemDisk::new();
    let mut core = baseline(&disk, &mem_options());
    let mut states = vec![without_counters(dump_disk(&disk))];
    for step in 0..GROUP_STEPS {
        group_step(&mut core, step).unwrap();
        states.push(without_counters(dump_disk(&disk)));
    }
    states
}

/// Where `state` is among the prefix states (the flush step changes nothing logical, so the
/// last match is taken).
fn prefix_index(states: &[Dump], state: &Dump, what: &str) -> usize {
    let state = without_counters(state.clone());
    states
        .iter()
        .rposition(|s| *s == state)
        .unwrap_or_else(|| panic!("{what}: state is no prefix of the workload"))
}

/// Runs the workload until the first error; returns how many steps were durable for sure
/// (every step up to the last one that returned Ok from a durable commit).
fn run_group(core: &mut StoreCore) -> usize {
    let mut durable = 0;
    for step in 0..GROUP_STEPS {
        let before = core.io_stats().durable_commits;
        if group_step(core, step).is_err() {
            break;
        }
        if core.io_stats().durable_commits > before {
            durable = step + 1;
        }
    }
    durable
}

/// The grouped workload really groups: fewer durable commits than writes, and fsyncs only
/// for the durable ones.
#[test]
fn group_commit_groups_writes() {
    for ((mode, options), (_, each)) in group_modes().into_iter().zip(modes()) {
        let fsyncs_with = |options: &StoreOptions| {
            let disk = MemDisk::new();
            let mut core = group_baseline(&disk, options);
            let (before, syncs) = (core.io_stats(), disk.syncs());
            for step in 0..GROUP_STEPS {
                group_step(&mut core, step).unwrap();
            }
            let after = core.io_stats();
            assert_eq!(after.fsyncs - before.fsyncs, disk.syncs() - syncs, "{mode}");
            (
                after.durable_commits - before.durable_commits,
                disk.syncs() - syncs,
            )
        };
        let (grouped_durable, grouped) = fsyncs_with(&options);
        let (each_durable, separate) = fsyncs_with(&each);
        assert_eq!(grouped_durable, 1, "{mode}");
        assert_eq!(
            each_durable,
            GROUP_STEPS as u64 - 1,
            "{mode}: the flush has nothing to do"
        );
        assert!(
            grouped * 2 <= separate,
            "{mode}: {grouped} fsyncs grouped vs {separate} one commit each"
        );
    }
}

/// A process crash at every disk operation of a grouped workload: the store reopens to the
/// state after some prefix of the workload, never a mix, and never before a step whose
/// durable commit had returned.
#[test]
fn group_commit_crash_at_every_op_is_a_prefix() {
    let states = group_prefix_states();
    for (mode, options) in group_modes() {
        let disk = MemDisk::new();
        let mut core = group_baseline(&disk, &options);
        let ops_before = disk.ops();
        assert_eq!(run_group(&mut core), GROUP_STEPS);
        let ops_in = disk.ops() - ops_before;
        assert!(ops_in > 2);
        let mut seen = std::collections::BTreeSet::new();
        for k in 1..=ops_in {
            let disk = MemDisk::new();
            let mut core = group_baseline(&disk, &options);
            disk.fail_at(ops_before + k, true);
            let durable = run_group(&mut core);
            assert!(disk.has_failed(), "{mode} k={k}: fault not reached");
            drop(core);
            let what = format!("{mode} group crash at op {k}/{ops_in}");
            let state = reopen_and_dump(disk.live_image(), &what);
            let at = prefix_index(&states, &state, &what);
            assert!(
                at >= durable,
                "{what}: durable step {durable} lost (state {at})"
            );
            seen.insert(at);
        }
        assert!(seen.len() >= 2, "{mode}: both outcomes expected: {seen:?}");
    }
}

/// Power loss at every sync of a grouped workload: the durable image reopens to a prefix
/// state, at or after the last durable step completed before the power went.
#[test]
fn group_commit_power_loss_at_every_sync_is_a_prefix() {
    let states = group_prefix_states();
    for (mode, options) in group_modes() {
        let disk = MemDisk::new();
        let mut core = group_baseline(&disk, &options);
        let syncs_before = disk.syncs();
        run_group(&mut core);
        let syncs_in = disk.syncs() - syncs_before;
        assert!(syncs_in >= 1);
        for s in 1..=syncs_in + 1 {
            let disk = MemDisk::new();
            let mut core = group_baseline(&disk, &options);
            disk.freeze_from_sync(syncs_before + s);
            // Steps durable before the frozen sync: the workload's durable commits happen at
            // the end (flush), so only a run past every sync must be complete.
            run_group(&mut core);
            let images = [
                ("durable", disk.durable_image()),
                ("durable+header", disk.durable_image_with_header()),
            ];
            drop(core);
            for (kind, image) in images {
                let what = format!("{mode} group power loss from sync {s} ({kind})");
                let state = reopen_and_dump(image, &what);
                let at = prefix_index(&states, &state, &what);
                if s > syncs_in {
                    assert_eq!(at, GROUP_STEPS, "{what}: all syncs done but not durable");
                }
            }
        }
    }
}

/// A storage error inside a group loses answered (non-durable) commits: the store notices on
/// reopen, refuses page commits and acks (retryable) until the fence is lifted, and nothing
/// durable is lost. With every commit durable, the same error fences nothing.
#[test]
fn rollback_of_answered_commits_fences_grouped_writes() {
    let (_, options) = group_modes().remove(0);
    let disk = MemDisk::new();
    let mut core = group_baseline(&disk, &options);
    core.commit_page(page(&["g"], Some("400"), 4_000)).unwrap();
    assert!(
        core.flush_due_in().is_some(),
        "the page is grouped, not durable"
    );
    // The group's durable commit fails (its first write).
    disk.fail_at(disk.ops() + 1, false);
    let err = core.flush().unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(core.is_fenced());
    assert_eq!(core.io_stats().rollbacks, 1);
    let refused = core
        .commit_page(page(&["h"], Some("500"), 5_000))
        .unwrap_err();
    assert!(
        refused.is_rolled_back() && refused.is_retryable(),
        "{refused}"
    );
    assert!(core.ack(SinkId::LogSearch, 1).unwrap_err().is_rolled_back());
    // Settings and secrets are not fenced (always durable, not positions).
    core.set_setting("k", &serde_json::json!(1)).unwrap();
    // The cursor is back at the last durable page: the poller re-reads it and fetches "g" again.
    let cursor = core.cursor(&streaming()).unwrap().unwrap();
    assert_eq!(cursor.position.unwrap().as_str(), "200");
    core.lift_fence();
    core.commit_page(page(&["g"], Some("400"), 4_000)).unwrap();

    // Every commit durable: an error loses nothing answered, so nothing is fenced.
    let disk = MemDisk::new();
    let mut core = baseline(&disk, &mem_options());
    disk.fail_at(disk.ops() + 1, false);
    core.commit_page(page(&["h"], Some("500"), 5_000))
        .unwrap_err();
    assert!(!core.is_fenced());
    core.commit_page(page(&["h"], Some("500"), 5_000)).unwrap();
}
