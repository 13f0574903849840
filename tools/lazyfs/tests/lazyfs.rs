//! The layer itself: fsynced data survives a power cut, unsynced data does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;

use lazyfs::LazyFs;

fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("disk"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    (dir, backing, mnt)
}

#[test]
fn unsynced_data_is_dropped_at_a_power_cut_and_synced_data_survives() {
    let (_dir, backing, mnt) = dirs();
    let fs = LazyFs::mount(&backing, &mnt).expect("FUSE mount (needs /dev/fuse and root)");
    let path = mnt.join("f");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.write_all(&[1u8; 10_000]).unwrap();
    f.sync_data().unwrap();
    // Overwrite inside the synced part, extend past it, and read both back before the cut.
    f.write_all_at(&[2u8; 100], 5_000).unwrap();
    f.write_all_at(&[3u8; 3_000], 10_000).unwrap();
    let mut seen = vec![0u8; 13_000];
    f.read_exact_at(&mut seen, 0).unwrap();
    assert_eq!(&seen[5_000..5_100], &[2u8; 100][..]);
    assert_eq!(&seen[10_000..], &[3u8; 3_000][..]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 13_000);
    // Not yet on the disk.
    assert_eq!(std::fs::metadata(backing.join("f")).unwrap().len(), 10_000);
    assert!(fs.unsynced().1 > 0);
    fs.freeze();
    assert!(
        f.write_all_at(&[4u8; 10], 0).is_err(),
        "writes after the cut fail"
    );
    drop(f);
    let report = fs.power_off();
    assert_eq!(report.files, 1);
    assert!(report.stats.fsyncs >= 1);

    let _fs = LazyFs::mount(&backing, &mnt).unwrap();
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after, vec![1u8; 10_000], "exactly the synced state");
}

#[test]
fn truncate_create_and_rename_follow_their_fsync() {
    let (_dir, backing, mnt) = dirs();
    let fs = LazyFs::mount(&backing, &mnt).unwrap();
    std::fs::create_dir(mnt.join("d")).unwrap();
    let mut f = std::fs::File::create(mnt.join("d/a")).unwrap();
    f.write_all(b"hello world").unwrap();
    f.sync_all().unwrap();
    f.set_len(5).unwrap();
    f.write_all_at(b"!", 8).unwrap();
    assert_eq!(std::fs::read(mnt.join("d/a")).unwrap(), b"hello\0\0\0!");
    f.sync_all().unwrap();
    assert_eq!(std::fs::read(backing.join("d/a")).unwrap(), b"hello\0\0\0!");
    // A new file renamed into place without an fsync comes back empty.
    let mut t = std::fs::File::create(mnt.join("d/t")).unwrap();
    t.write_all(b"unsynced").unwrap();
    drop(t);
    std::fs::rename(mnt.join("d/t"), mnt.join("d/b")).unwrap();
    assert_eq!(std::fs::read(mnt.join("d/b")).unwrap(), b"unsynced");
    fs.freeze();
    fs.power_off();
    let _fs = LazyFs::mount(&backing, &mnt).unwrap();
    assert_eq!(std::fs::read(mnt.join("d/a")).unwrap(), b"hello\0\0\0!");
    assert_eq!(std::fs::read(mnt.join("d/b")).unwrap(), b"");
    let names: Vec<_> = std::fs::read_dir(mnt.join("d"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
