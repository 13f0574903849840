//! A LazyFS-style FUSE passthrough for power-loss tests (RELIABILITY.md §6 scenario 3).
//!
//! [`LazyFs::mount`] shows a backing directory at a mount point. File data written through
//! the mount is held in memory (4 KiB pages per file) and reaches the backing file only when
//! the file is fsynced (`fsync`/`fdatasync`, or `sync_file_range`-free `fsync` of any handle
//! of the file). The backing directory is "the disk": what is in it survives a power cut,
//! what is only in memory does not.
//!
//! A power cut is two steps so that the process using the file system can be killed in
//! between: [`LazyFs::freeze`] makes every later operation fail with `EIO` (nothing more can
//! become durable, as when the power is gone), then [`LazyFs::power_off`] drops every
//! unsynced page and unmounts. Mounting the backing directory again is the reboot.
//!
//! What is modelled and what is not:
//! - file data: lost unless fsynced, including the size a write extended the file to and a
//!   truncation (both are durable only at the next fsync of that file);
//! - metadata (create, mkdir, rename, unlink, chmod): durable at once, like a journalling
//!   file system that commits metadata before the data it points at. A file created and
//!   renamed without an fsync of its data comes back empty (the `auto_da_alloc`-less ext4
//!   case), which is the case software must handle;
//! - every open uses direct I/O, so the kernel's page cache above FUSE never serves data
//!   the layer has dropped; shared writable `mmap` is therefore not available.
#![allow(clippy::too_many_arguments)]

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, KernelConfig, MountOption, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

const PAGE: u64 = 4096;
const TTL: Duration = Duration::from_secs(1);

/// Counters of one mount, for the figures a test prints.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `write` calls served.
    pub writes: u64,
    /// `fsync`/`fdatasync` calls served.
    pub fsyncs: u64,
    /// Bytes made durable by those fsyncs (whole dirty pages).
    pub synced_bytes: u64,
    /// Operations refused with `EIO` after [`LazyFs::freeze`].
    pub refused_after_freeze: u64,
}

/// What a power cut dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Files that had unsynced data.
    pub files: usize,
    /// Unsynced pages dropped, in bytes.
    pub bytes: u64,
    /// The mount's counters up to the cut.
    pub stats: Stats,
}

/// Unsynced state of one file.
#[derive(Debug)]
struct Dirty {
    pages: BTreeMap<u64, Box<[u8]>>,
    /// The file's size as the running system sees it.
    size: u64,
    /// Bytes at or beyond this offset that no dirty page covers read as zero (a truncation
    /// not yet synced cut the backing data there).
    zero_from: u64,
}

#[derive(Debug, Default)]
struct State {
    paths: HashMap<u64, PathBuf>,
    dirty: HashMap<u64, Dirty>,
    frozen: bool,
    /// Freeze at this fsync (1-based count), before or after making it durable.
    freeze_at: Option<(u64, When)>,
    stats: Stats,
}

/// Where [`LazyFs::freeze_at_fsync`] cuts the power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// While the fsync is in flight: it fails and its data is not durable.
    Before,
    /// Just after the fsync made its data durable, before the caller hears of it.
    After,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn kind_of(meta: &std::fs::Metadata) -> FileType {
    let ft = meta.file_type();
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsecs.clamp(0, 999_999_999) as u32)
    } else {
        UNIX_EPOCH
    }
}

/// Reads `buf.len()` bytes of the backing file at `offset`, zero beyond its end.
fn read_backing(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf[done..].fill(0);
    Ok(())
}

struct Fs {
    state: Arc<Mutex<State>>,
}

impl Fs {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn path(&self, ino: u64) -> Result<PathBuf, i32> {
        self.paths.get(&ino).cloned().ok_or(libc::ESTALE)
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, i32> {
        Ok(self.path(parent)?.join(name))
    }

    fn ino_for(meta: &std::fs::Metadata) -> u64 {
        // FUSE_ROOT_ID (1) is the mount's root; no backing file system uses 1 for a file.
        meta.ino().max(2)
    }

    fn attr(&self, ino: u64, meta: &std::fs::Metadata) -> FileAttr {
        let size = self.dirty.get(&ino).map_or(meta.len(), |d| d.size);
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: kind_of(meta),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: PAGE as u32,
            flags: 0,
        }
    }

    fn stat(&self, ino: u64) -> Result<FileAttr, i32> {
        let path = self.path(ino)?;
        let meta = std::fs::symlink_metadata(&path).map_err(|e| errno(&e))?;
        Ok(self.attr(ino, &meta))
    }

    /// Registers a backing path found by lookup, create or readdir.
    fn learn(&mut self, path: PathBuf) -> Result<FileAttr, i32> {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| errno(&e))?;
        let ino = Self::ino_for(&meta);
        self.paths.insert(ino, path);
        Ok(self.attr(ino, &meta))
    }

    fn open_backing(&self, ino: u64) -> Result<File, i32> {
        let path = self.path(ino)?;
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .map_err(|e| errno(&e))
    }

    fn dirty_mut(&mut self, ino: u64) -> Result<&mut Dirty, i32> {
        if !self.dirty.contains_key(&ino) {
            let path = self.path(ino)?;
            let size = std::fs::metadata(&path).map_err(|e| errno(&e))?.len();
            self.dirty.insert(
                ino,
                Dirty {
                    pages: BTreeMap::new(),
                    size,
                    zero_from: size,
                },
            );
        }
        self.dirty.get_mut(&ino).ok_or(libc::EIO)
    }

    fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), i32> {
        let backing = self.open_backing(ino)?;
        let dirty = self.dirty_mut(ino)?;
        let end = offset + data.len() as u64;
        let mut page = offset / PAGE;
        while page * PAGE < end {
            let start = page * PAGE;
            let buf = match dirty.pages.entry(page) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let mut fresh = vec![0u8; PAGE as usize].into_boxed_slice();
                    if start < dirty.zero_from {
                        let keep = (dirty.zero_from - start).min(PAGE) as usize;
                        read_backing(&backing, start, &mut fresh[..keep]).map_err(|e| errno(&e))?;
                    }
                    v.insert(fresh)
                }
            };
            let from = offset.max(start);
            let to = end.min(start + PAGE);
            let src = &data[(from - offset) as usize..(to - offset) as usize];
            buf[(from - start) as usize..(to - start) as usize].copy_from_slice(src);
            page += 1;
        }
        dirty.size = dirty.size.max(end);
        Ok(())
    }

    fn read(&self, ino: u64, offset: u64, len: u32) -> Result<Vec<u8>, i32> {
        let backing = self.open_backing(ino)?;
        let Some(dirty) = self.dirty.get(&ino) else {
            let mut buf = vec![0u8; len as usize];
            let mut done = 0;
            while done < buf.len() {
                let n = backing
                    .read_at(&mut buf[done..], offset + done as u64)
                    .map_err(|e| errno(&e))?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            buf.truncate(done);
            return Ok(buf);
        };
        let end = (offset + u64::from(len)).min(dirty.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let mut page = offset / PAGE;
        while page * PAGE < end {
            let start = page * PAGE;
            let from = offset.max(start);
            let to = end.min(start + PAGE);
            let dst = &mut out[(from - offset) as usize..(to - offset) as usize];
            if let Some(buf) = dirty.pages.get(&page) {
                dst.copy_from_slice(&buf[(from - start) as usize..(to - start) as usize]);
            } else if from < dirty.zero_from {
                let keep = (dirty.zero_from.min(to) - from) as usize;
                read_backing(&backing, from, &mut dst[..keep]).map_err(|e| errno(&e))?;
            }
            page += 1;
        }
        Ok(out)
    }

    fn truncate(&mut self, ino: u64, size: u64) -> Result<(), i32> {
        let dirty = self.dirty_mut(ino)?;
        dirty.pages.retain(|&page, _| page * PAGE < size);
        if let Some(buf) = dirty.pages.get_mut(&(size / PAGE)) {
            buf[(size % PAGE) as usize..].fill(0);
        }
        dirty.size = size;
        dirty.zero_from = dirty.zero_from.min(size);
        Ok(())
    }

    /// Makes the file's unsynced pages and size durable in the backing file.
    fn fsync(&mut self, ino: u64) -> Result<(), i32> {
        self.stats.fsyncs += 1;
        match self.freeze_at {
            Some((n, When::Before)) if n == self.stats.fsyncs => {
                self.frozen = true;
                return Err(libc::EIO);
            }
            Some((n, When::After)) if n == self.stats.fsyncs => {
                self.frozen = true;
                self.fsync_now(ino)?;
                return Err(libc::EIO);
            }
            _ => {}
        }
        self.fsync_now(ino)
    }

    fn fsync_now(&mut self, ino: u64) -> Result<(), i32> {
        let Some(dirty) = self.dirty.remove(&ino) else {
            return Ok(());
        };
        let path = self.path(ino)?;
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| errno(&e))?;
        file.set_len(dirty.size.min(dirty.zero_from))
            .map_err(|e| errno(&e))?;
        for (page, buf) in &dirty.pages {
            let start = page * PAGE;
            let len = (dirty.size.saturating_sub(start)).min(PAGE) as usize;
            file.write_all_at(&buf[..len], start)
                .map_err(|e| errno(&e))?;
            self.stats.synced_bytes += len as u64;
        }
        file.set_len(dirty.size).map_err(|e| errno(&e))?;
        Ok(())
    }

    fn forget_path(&mut self, path: &Path) {
        let gone: Vec<u64> = self
            .paths
            .iter()
            .filter(|(_, p)| p.as_path() == path)
            .map(|(&ino, _)| ino)
            .collect();
        for ino in gone {
            self.paths.remove(&ino);
            self.dirty.remove(&ino);
        }
    }
}

macro_rules! live {
    ($state:expr, $reply:expr) => {
        if $state.frozen {
            $state.stats.refused_after_freeze += 1;
            $reply.error(libc::EIO);
            return;
        }
    };
}

macro_rules! tri {
    ($e:expr, $reply:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => {
                $reply.error(code);
                return;
            }
        }
    };
}

impl Filesystem for Fs {
    fn init(&mut self, _req: &Request<'_>, _config: &mut KernelConfig) -> Result<(), libc::c_int> {
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let mut st = self.lock();
        live!(st, reply);
        let path = tri!(st.child(parent, name), reply);
        let attr = tri!(st.learn(path), reply);
        reply.entry(&TTL, &attr, 0);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let mut st = self.lock();
        live!(st, reply);
        let attr = tri!(st.stat(ino), reply);
        reply.attr(&TTL, &attr);
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        let path = tri!(st.path(ino), reply);
        if let Some(mode) = mode {
            let perms = std::fs::Permissions::from_mode(mode & 0o7777);
            tri!(
                std::fs::set_permissions(&path, perms).map_err(|e| errno(&e)),
                reply
            );
        }
        if uid.is_some() || gid.is_some() {
            tri!(
                std::os::unix::fs::lchown(&path, uid, gid).map_err(|e| errno(&e)),
                reply
            );
        }
        if let Some(size) = size {
            tri!(st.truncate(ino, size), reply);
        }
        let attr = tri!(st.stat(ino), reply);
        reply.attr(&TTL, &attr);
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        let path = tri!(st.child(parent, name), reply);
        tri!(
            std::fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(&path)
                .map_err(|e| errno(&e)),
            reply
        );
        let attr = tri!(st.learn(path), reply);
        reply.entry(&TTL, &attr, 0);
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.lock();
        live!(st, reply);
        let path = tri!(st.child(parent, name), reply);
        tri!(std::fs::remove_file(&path).map_err(|e| errno(&e)), reply);
        st.forget_path(&path);
        reply.ok();
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut st = self.lock();
        live!(st, reply);
        let path = tri!(st.child(parent, name), reply);
        tri!(std::fs::remove_dir(&path).map_err(|e| errno(&e)), reply);
        st.forget_path(&path);
        reply.ok();
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        if flags != 0 {
            reply.error(libc::EINVAL);
            return;
        }
        let from = tri!(st.child(parent, name), reply);
        let to = tri!(st.child(newparent, newname), reply);
        if from != to && std::fs::symlink_metadata(&to).is_ok() {
            st.forget_path(&to);
        }
        tri!(std::fs::rename(&from, &to).map_err(|e| errno(&e)), reply);
        for path in st.paths.values_mut() {
            if let Ok(rest) = path.strip_prefix(&from) {
                *path = if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                };
            }
        }
        reply.ok();
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let mut st = self.lock();
        live!(st, reply);
        tri!(st.stat(ino), reply);
        if flags & libc::O_TRUNC != 0 {
            tri!(st.truncate(ino, 0), reply);
        }
        reply.opened(0, fuser::consts::FOPEN_DIRECT_IO);
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        let path = tri!(st.child(parent, name), reply);
        let mut options = OpenOptions::new();
        options
            .write(true)
            .mode(mode & !umask & 0o7777)
            .custom_flags(flags & libc::O_EXCL);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        } else {
            options.create(true);
        }
        tri!(options.open(&path).map_err(|e| errno(&e)), reply);
        let attr = tri!(st.learn(path), reply);
        if flags & libc::O_TRUNC != 0 {
            tri!(st.truncate(attr.ino, 0), reply);
        }
        let attr = tri!(st.stat(attr.ino), reply);
        reply.created(&TTL, &attr, 0, 0, fuser::consts::FOPEN_DIRECT_IO);
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        let data = tri!(st.read(ino, offset.max(0) as u64, size), reply);
        reply.data(&data);
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        st.stats.writes += 1;
        tri!(st.write(ino, offset.max(0) as u64, data), reply);
        reply.written(data.len() as u32);
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _lo: u64, reply: ReplyEmpty) {
        // close() does not make data durable.
        reply.ok();
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        tri!(st.fsync(ino), reply);
        reply.ok();
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        let path = tri!(st.path(ino), reply);
        let mut entries = vec![
            (ino, FileType::Directory, OsStr::new(".").to_owned()),
            (ino, FileType::Directory, OsStr::new("..").to_owned()),
        ];
        let listing = tri!(std::fs::read_dir(&path).map_err(|e| errno(&e)), reply);
        for entry in listing.flatten() {
            let child = entry.path();
            if let Ok(attr) = st.learn(child) {
                entries.push((attr.ino, attr.kind, entry.file_name()));
            }
        }
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset.max(0) as usize) {
            if reply.add(
                *ino,
                (i + 1) as i64,
                *kind,
                OsStr::from_bytes(name.as_bytes()),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut st = self.lock();
        live!(st, reply);
        reply.ok();
    }

    fn statfs(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyStatfs) {
        let st = self.lock();
        let path = tri!(st.path(ino.max(1)), reply);
        drop(st);
        let s = tri!(
            nix::sys::statvfs::statvfs(&path).map_err(|e| e as i32),
            reply
        );
        reply.statfs(
            s.blocks(),
            s.blocks_free(),
            s.blocks_available(),
            s.files(),
            s.files_free(),
            s.block_size() as u32,
            s.name_max() as u32,
            s.fragment_size() as u32,
        );
    }

    fn access(&mut self, _req: &Request<'_>, _ino: u64, _mask: i32, reply: ReplyEmpty) {
        reply.ok();
    }
}

/// A mounted lazy file system.
pub struct LazyFs {
    state: Arc<Mutex<State>>,
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
}

impl std::fmt::Debug for LazyFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyFs")
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

impl LazyFs {
    /// Mounts `backing` at `mountpoint` (an existing empty directory). Needs `/dev/fuse` and
    /// the right to mount (root, or `fusermount3`).
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<Self> {
        let backing = backing.canonicalize()?;
        let mut state = State::default();
        state.paths.insert(fuser::FUSE_ROOT_ID, backing);
        let state = Arc::new(Mutex::new(state));
        let fs = Fs {
            state: state.clone(),
        };
        let options = [
            MountOption::FSName("lazyfs".to_owned()),
            MountOption::Subtype("lazyfs".to_owned()),
            MountOption::RW,
        ];
        let session = fuser::spawn_mount2(fs, mountpoint, &options)?;
        Ok(Self {
            state,
            session: Some(session),
            mountpoint: mountpoint.to_owned(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.lock().stats
    }

    /// Unsynced data held now: (files, bytes in dirty pages).
    pub fn unsynced(&self) -> (usize, u64) {
        let st = self.lock();
        let bytes = st.dirty.values().map(|d| d.pages.len() as u64 * PAGE).sum();
        (st.dirty.len(), bytes)
    }

    /// The power is gone: from now on every operation fails with `EIO`.
    pub fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// Cuts the power at the `n`-th fsync of this mount (counting from 1), [`When::Before`]
    /// or [`When::After`] it reaches the disk; [`LazyFs::frozen`] tells when it happened.
    pub fn freeze_at_fsync(&self, n: u64, when: When) {
        self.lock().freeze_at = Some((n, when));
    }

    /// Whether the power is gone.
    pub fn frozen(&self) -> bool {
        self.lock().frozen
    }

    /// Drops every unsynced page and unmounts. The backing directory holds exactly what had
    /// been fsynced. Kill the processes using the mount first (after [`LazyFs::freeze`]).
    pub fn power_off(mut self) -> CutReport {
        let report = {
            let mut st = self.lock();
            st.frozen = true;
            let report = CutReport {
                files: st.dirty.len(),
                bytes: st.dirty.values().map(|d| d.pages.len() as u64 * PAGE).sum(),
                stats: st.stats,
            };
            st.dirty.clear();
            report
        };
        self.unmount();
        report
    }

    fn unmount(&mut self) {
        if let Some(session) = self.session.take() {
            drop(session);
        }
        // The session's unmount can fail while the kernel still holds the mount busy; a lazy
        // unmount makes sure the mount point is free for the next mount.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        self.unmount();
    }
}
