//! The setup code on the boot partition, for a box without a screen (`[setup] code_file`).
//!
//! Most appliances ship headless: the admin cannot read the console, and the journal needs a
//! login. So while the appliance is unclaimed the service also writes the one-time setup code,
//! the page's address and the certificate fingerprint to a file the image puts on the FAT boot
//! partition (readable by putting the card into any PC). It is rewritten whenever a new code is
//! issued (every start, `boxidr setup-code`, a factory reset) and removed once the appliance is
//! claimed; if the removal fails it is overwritten with `claimed`, so a stale code never stays
//! readable. Writes are atomic: a temporary file in the same directory, fsync, rename, fsync of
//! the directory. The code goes nowhere else besides the journal and the console.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What the file says once the appliance is claimed and the file could not be removed.
pub const CLAIMED_TEXT: &str = "claimed\r\n";

/// Where the kernel keeps the host name (mDNS answers for `<hostname>.local`).
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// The configured code file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFile {
    path: PathBuf,
}

impl CodeFile {
    /// The file `[setup] code_file` names, if any.
    pub fn from_config(config: &boxidr_config::Config) -> Option<Self> {
        config.setup.code_file.clone().map(|path| Self { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the code, the page's address(es) and the certificate fingerprint.
    pub fn write(&self, code: &str, urls: &[String], fingerprint: &str) -> std::io::Result<()> {
        let mut text = String::from("boxidr appliance setup\r\n======================\r\n\r\n");
        text.push_str(&format!("Setup code (one use): {code}\r\n\r\n"));
        text.push_str("Setup page:\r\n");
        for url in urls {
            text.push_str(&format!("  {url}\r\n"));
        }
        text.push_str(
            "  or https://<the appliance's IP address>/ (see your router's DHCP leases)\r\n\r\n",
        );
        text.push_str(&format!(
            "Certificate SHA-256 fingerprint:\r\n  {fingerprint}\r\n\r\n\
             Your browser warns about the appliance's own certificate: go on only if it shows\r\n\
             this fingerprint. Enter the setup code and choose the admin password.\r\n\r\n\
             This file is removed once the appliance is claimed; a code issued earlier no\r\n\
             longer works once a new one is written here.\r\n"
        ));
        write_atomically(&self.path, text.as_bytes())
    }

    /// The appliance is claimed: removes the file (nothing to do if it is absent); if removal
    /// fails, overwrites it with [`CLAIMED_TEXT`].
    pub fn claimed(&self) -> std::io::Result<()> {
        self.claimed_with(|path| std::fs::remove_file(path))
    }

    fn claimed_with(
        &self,
        remove: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match remove(&self.path) {
            Ok(()) => sync_dir(&self.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(removal) => {
                tracing::warn!(path = %self.path.display(), error = %removal,
                    "Cannot remove the setup code file; overwriting it instead.");
                write_atomically(&self.path, CLAIMED_TEXT.as_bytes())
            }
        }
    }
}

/// The setup page's address(es) for a page listening on `listen`: the mDNS name and, when
/// the page listens on one address only, that address.
pub fn page_urls(listen: SocketAddr, hostname: Option<&str>) -> Vec<String> {
    let port = if listen.port() == 443 {
        String::new()
    } else {
        format!(":{}", listen.port())
    };
    let mut urls = Vec::new();
    let named = |n: &&str| !n.is_empty() && *n != "(none)" && *n != "localhost";
    if let Some(name) = hostname.map(str::trim).filter(named) {
        urls.push(format!("https://{name}.local{port}/"));
    }
    if !listen.ip().is_unspecified() {
        let host = match listen {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        urls.push(format!("https://{host}{port}/"));
    }
    urls
}

/// This machine's host name, if the kernel says.
pub fn hostname() -> Option<String> {
    std::fs::read_to_string(HOSTNAME_FILE)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Mode 0600 (ignored on the FAT boot partition, whose mount options decide).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    boxidr_setup::replace_file(path, bytes, 0o600)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(parent(path))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path) -> CodeFile {
        CodeFile {
            path: dir.join("boxidr-setup.txt"),
        }
    }

    /// The file holds the code, every URL and the fingerprint; a new code replaces it whole
    /// with no temporary file left; claiming removes it.
    #[test]
    fn written_rewritten_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path());
        let urls = page_urls("0.0.0.0:443".parse().unwrap(), Some("boxidr-ab12\n"));
        assert_eq!(urls, ["https://boxidr-ab12.local/"]);
        f.write("AAAA-BBBB", &urls, "AB:CD").unwrap();
        let text = std::fs::read_to_string(f.path()).unwrap();
        for said in ["AAAA-BBBB", "https://boxidr-ab12.local/", "AB:CD"] {
            assert!(text.contains(said), "{said} missing:\n{text}");
        }
        f.write("CCCC-DDDD", &urls, "AB:CD").unwrap();
        let text = std::fs::read_to_string(f.path()).unwrap();
        assert!(text.contains("CCCC-DDDD") && !text.contains("AAAA-BBBB"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        f.claimed().unwrap();
        assert!(!f.path().exists());
        f.claimed().unwrap();
        assert!(!f.path().exists(), "claiming twice writes nothing");
    }

    /// When the removal fails, the code is overwritten with `claimed`; when even that fails
    /// the error is returned (and logged by the caller).
    #[test]
    fn unremovable_file_becomes_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path());
        f.write("AAAA-BBBB", &[], "AB:CD").unwrap();
        let refused = |_: &Path| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        f.claimed_with(refused).unwrap();
        assert_eq!(std::fs::read_to_string(f.path()).unwrap(), CLAIMED_TEXT);
        // A non-empty directory in its place can be neither removed nor replaced.
        std::fs::remove_file(f.path()).unwrap();
        std::fs::create_dir(f.path()).unwrap();
        std::fs::write(f.path().join("x"), "").unwrap();
        assert!(f.claimed().is_err());
    }

    /// A page on one address gets that URL too; other ports are spelled out; IPv6 is bracketed.
    #[test]
    fn urls() {
        assert_eq!(
            page_urls("192.168.1.20:8443".parse().unwrap(), Some("box")),
            ["https://box.local:8443/", "https://192.168.1.20:8443/"]
        );
        assert_eq!(
            page_urls("[fe80::1]:443".parse().unwrap(), None),
            ["https://[fe80::1]/"]
        );
        assert!(page_urls("0.0.0.0:443".parse().unwrap(), Some(" ")).is_empty());
        assert!(page_urls("0.0.0.0:443".parse().unwrap(), Some("(none)")).is_empty());
    }
}
