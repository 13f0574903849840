//! `boxidr run` refusing to start: a database written by newer firmware exits 78 (so systemd's
//! `RestartPreventExitStatus=78` stops the crash loop) with a journal line that says why and
//! what to do, and leaves the database untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failure should panic loudly

use std::process::Command;

use boxidr_store::{StoreCore, StoreOptions, schema};

/// A store stamped with schema 99 is refused: exit 78, the versions and the remedy in the log,
/// and the file unchanged byte for byte.
#[test]
fn newer_schema_exits_78_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let database = data.join("boxidr.redb");
    StoreCore::open(StoreOptions::new(&database))
        .unwrap()
        .close()
        .unwrap();
    {
        let db = redb::Database::open(&database).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::META)
            .unwrap()
            .insert(schema::META_SCHEMA_VERSION, 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&database).unwrap();
    let config = dir.path().join("boxidr.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[setup]\nlisten = \"127.0.0.1:0\"\n[clock]\nwait_for_sync = false\n\
             [board]\nbackend = \"simulated\"\n",
            data.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_boxidr"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{log}");
    let supports = format!(
        "newer than this firmware supports ({})",
        schema::SCHEMA_VERSION
    );
    for said in [
        "Refusing to start",
        "schema version 99",
        supports.as_str(),
        "install the newer boxidr package again",
        "exit_code=78",
    ] {
        assert!(log.contains(said), "missing {said:?} in:\n{log}");
    }
    assert_eq!(
        std::fs::read(&database).unwrap(),
        before,
        "the database is not modified"
    );
}
