//! The Box user directory as the renderer sees it: login, name, status and role by user id.
//!
//! The users sync stores each user as the JSON object Box sent from `GET /2.0/users`
//! (`shared/box/CONTRACT.md` §3.2, fields `name,login,status,role,enterprise`).
//! [`DirectoryUser::from_json`] reads that object leniently; [`UserDirectory`] is the lookup
//! the renderer calls (a fake is any map or closure). [`CachedDirectory`] is the one the
//! appliance runs: the users stay on disk (500,000 users are ~100 MB of JSON in the store) and
//! only a bounded set of parsed users is held in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

/// Longest `status` or `role` text kept for values Box may add later.
const MAX_OPEN_VALUE: usize = 64;
/// Longest group name kept (Box group names are short; the scope allows 255).
const MAX_GROUP_NAME: usize = 255;
/// Key the users sync adds to a stored user while the scope names groups.
pub const SCOPE_GROUPS_KEY: &str = "boxidr_scope_groups";

/// Box's `status` of a user. `inactive` is what InsightIDR calls a disabled account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// `active`.
    Active,
    /// `inactive`: the account cannot log in.
    Inactive,
    /// `cannot_delete_edit`: restricted, but active.
    CannotDeleteEdit,
    /// `cannot_delete_edit_upload`: restricted, but active.
    CannotDeleteEditUpload,
    /// A value outside Box's documented enum (kept, at most 64 characters).
    Other(String),
}

impl UserStatus {
    fn parse(text: &str) -> Self {
        match text {
            "active" => Self::Active,
            "inactive" => Self::Inactive,
            "cannot_delete_edit" => Self::CannotDeleteEdit,
            "cannot_delete_edit_upload" => Self::CannotDeleteEditUpload,
            other => Self::Other(other.chars().take(MAX_OPEN_VALUE).collect()),
        }
    }

    /// Box's text for this status.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::CannotDeleteEdit => "cannot_delete_edit",
            Self::CannotDeleteEditUpload => "cannot_delete_edit_upload",
            Self::Other(text) => text,
        }
    }
}

/// Box's `role` of a user (returned only when asked for with `fields`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// `admin`: the enterprise's primary administrator.
    Admin,
    /// `coadmin`: a co-administrator.
    Coadmin,
    /// `user`: everyone else.
    User,
    /// A value outside Box's documented enum (kept, at most 64 characters).
    Other(String),
}

impl UserRole {
    fn parse(text: &str) -> Self {
        match text {
            "admin" => Self::Admin,
            "coadmin" => Self::Coadmin,
            "user" => Self::User,
            other => Self::Other(other.chars().take(MAX_OPEN_VALUE).collect()),
        }
    }

    /// Box's text for this role.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Admin => "admin",
            Self::Coadmin => "coadmin",
            Self::User => "user",
            Self::Other(text) => text,
        }
    }
}

/// What the renderer knows about one Box user from the directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryUser {
    /// The login (an email address); used when an event carries none.
    pub login: Option<String>,
    /// The display name.
    pub name: Option<String>,
    /// `None` when the sync did not return it.
    pub status: Option<UserStatus>,
    /// `None` when the sync did not return it.
    pub role: Option<UserRole>,
    /// The scoped Box groups the user is a member of, as the users sync recorded them
    /// (`boxidr_scope_groups`; empty when the scope names no group).
    pub scope_groups: Vec<String>,
}

/// A stored user that is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored Box user is not a JSON object")]
pub struct DirectoryError;

impl DirectoryUser {
    /// Parses the user JSON the store keeps (one object from `GET /2.0/users`).
    ///
    /// Every field is optional and wrong types are ignored; only text that is not a JSON
    /// object is an error.
    pub fn from_json(text: &str) -> Result<Self, DirectoryError> {
        let value: Value = serde_json::from_str(text).map_err(|_| DirectoryError)?;
        Self::from_value(&value).ok_or(DirectoryError)
    }

    /// Reads a Box user object; `None` if `value` is not an object.
    pub fn from_value(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        let text = |key: &str| obj.get(key).and_then(Value::as_str);
        Some(Self {
            login: text("login").map(str::to_owned),
            name: text("name").map(str::to_owned),
            status: text("status").map(UserStatus::parse),
            role: text("role").map(UserRole::parse),
            scope_groups: obj
                .get(SCOPE_GROUPS_KEY)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|name| name.chars().take(MAX_GROUP_NAME).collect())
                .collect(),
        })
    }

    /// `Some(true)` for an enterprise admin or co-admin ("Box admin" in InsightIDR), `None`
    /// when the role is unknown.
    pub fn is_admin(&self) -> Option<bool> {
        self.role
            .as_ref()
            .map(|role| matches!(role, UserRole::Admin | UserRole::Coadmin))
    }

    /// `Some(true)` when the status is anything but `active` (the `cannot_*` statuses are
    /// restricted-but-active and count as not disabled), `None` when unknown.
    pub fn is_disabled(&self) -> Option<bool> {
        self.status.as_ref().map(|status| {
            !matches!(
                status,
                UserStatus::Active
                    | UserStatus::CannotDeleteEdit
                    | UserStatus::CannotDeleteEditUpload
            )
        })
    }
}

/// Looks up Box users by id. Implemented by the sinks over the store; a lookup failure is
/// `None` (the record is rendered without directory facts, never held back).
pub trait UserDirectory {
    /// The user with this Box id, if known.
    fn user(&self, id: &str) -> Option<DirectoryUser>;
}

/// A directory that knows nobody (before the first users sync, or in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDirectory;

impl UserDirectory for NoDirectory {
    fn user(&self, _id: &str) -> Option<DirectoryUser> {
        None
    }
}

impl UserDirectory for HashMap<String, DirectoryUser> {
    fn user(&self, id: &str) -> Option<DirectoryUser> {
        self.get(id).cloned()
    }
}

impl UserDirectory for BTreeMap<String, DirectoryUser> {
    fn user(&self, id: &str) -> Option<DirectoryUser> {
        self.get(id).cloned()
    }
}

/// Adapts a closure, e.g. one that reads the store and parses with
/// [`DirectoryUser::from_json`].
#[derive(Debug, Clone, Copy)]
pub struct FnDirectory<F>(pub F);

impl<F: Fn(&str) -> Option<DirectoryUser>> UserDirectory for FnDirectory<F> {
    fn user(&self, id: &str) -> Option<DirectoryUser> {
        (self.0)(id)
    }
}

/// Where a [`CachedDirectory`] reads a user's stored JSON by id (the store's `UserReader`);
/// `None` if unknown or unreadable.
pub type UserSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Parsed users a [`CachedDirectory`] keeps by default; beyond it the cache starts over.
pub const DIRECTORY_CACHE: usize = 2048;

/// The user directory at send time: users read from a [`UserSource`] (the store) and parsed
/// with [`DirectoryUser::from_json`], a bounded cache of the parsed ones (the users active in
/// the current stretch of events) in front, so memory does not grow with the enterprise.
///
/// Before [`CachedDirectory::attach`] it knows nobody. A stored user in an unexpected shape
/// reads as unknown, not fatal: the event is still rendered, only without directory facts.
pub struct CachedDirectory {
    source: RwLock<Option<UserSource>>,
    /// Parsed users, and ids known to be absent (`None`).
    cache: Mutex<HashMap<String, Option<DirectoryUser>>>,
    capacity: usize,
}

impl Default for CachedDirectory {
    fn default() -> Self {
        Self::with_capacity(DIRECTORY_CACHE)
    }
}

impl std::fmt::Debug for CachedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map_or(0, |cache| cache.len());
        f.debug_struct("CachedDirectory")
            .field("attached", &self.source.read().is_ok_and(|s| s.is_some()))
            .field("cached", &cached)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl CachedDirectory {
    /// A directory keeping at most `capacity` parsed users (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            source: RwLock::new(None),
            cache: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Reads users from `source` from now on, and forgets what was cached.
    pub fn attach(&self, source: UserSource) {
        if let Ok(mut current) = self.source.write() {
            *current = Some(source);
        }
        self.forget();
    }

    /// Forgets every parsed user (after a users sync changed the stored ones).
    pub fn forget(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = HashMap::new();
        }
    }

    fn lookup(&self, id: &str) -> Option<DirectoryUser> {
        let source = self.source.read().ok()?.clone()?;
        source(id).and_then(|json| DirectoryUser::from_json(&json).ok())
    }
}

impl UserDirectory for CachedDirectory {
    fn user(&self, id: &str) -> Option<DirectoryUser> {
        if let Some(hit) = self.cache.lock().ok()?.get(id) {
            return hit.clone();
        }
        let user = self.lookup(id);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= self.capacity {
                cache.clear();
            }
            cache.insert(id.to_owned(), user.clone());
        }
        user
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The user shapes of the samples: full admin, inactive, standard without role.
    #[test]
    fn parses_box_users() {
        let admin = DirectoryUser::from_json(
            r#"{"type":"user","id":"3478867251","name":"Dana Admin",
                "login":"dana.admin@example.com","status":"active","role":"admin"}"#,
        )
        .unwrap();
        assert_eq!(admin.login.as_deref(), Some("dana.admin@example.com"));
        assert_eq!(admin.is_admin(), Some(true));
        assert_eq!(admin.is_disabled(), Some(false));

        let gone =
            DirectoryUser::from_json(r#"{"id":"1","status":"inactive","role":"user"}"#).unwrap();
        assert_eq!(gone.is_admin(), Some(false));
        assert_eq!(gone.is_disabled(), Some(true));

        let coadmin =
            DirectoryUser::from_json(r#"{"role":"coadmin","status":"cannot_delete_edit_upload"}"#)
                .unwrap();
        assert_eq!(coadmin.is_admin(), Some(true));
        assert_eq!(coadmin.is_disabled(), Some(false));

        let scoped = DirectoryUser::from_json(
            r#"{"id":"1","boxidr_scope_groups":["Finance", 7, "Sales & Marketing"]}"#,
        )
        .unwrap();
        assert_eq!(scoped.scope_groups, ["Finance", "Sales & Marketing"]);

        let bare = DirectoryUser::from_json(r#"{"login": 5, "status": null}"#).unwrap();
        assert_eq!(bare, DirectoryUser::default());
        assert_eq!(bare.is_admin(), None);
        assert_eq!(bare.is_disabled(), None);
    }

    /// Values Box may add later are kept (bounded) and treated conservatively.
    #[test]
    fn open_values() {
        let long = "x".repeat(500);
        let user = DirectoryUser::from_json(&format!(r#"{{"status":"{long}","role":"auditor"}}"#))
            .unwrap();
        assert_eq!(user.status.as_ref().unwrap().as_str().len(), 64);
        assert_eq!(user.is_disabled(), Some(true));
        assert_eq!(user.is_admin(), Some(false));
        assert_eq!(user.role.unwrap().as_str(), "auditor");
    }

    /// Text that is not a JSON object is an error, not a panic.
    #[test]
    fn rejects_non_objects() {
        for bad in ["", "[]", "null", "{", "\"user\""] {
            assert_eq!(DirectoryUser::from_json(bad), Err(DirectoryError), "{bad}");
        }
    }

    /// Maps and closures are directories.
    #[test]
    fn directories() {
        let mut map = HashMap::new();
        map.insert("7".to_owned(), DirectoryUser::default());
        assert!(map.user("7").is_some());
        assert!(map.user("8").is_none());
        assert!(NoDirectory.user("7").is_none());
        let by_fn = FnDirectory(|id: &str| (id == "9").then(DirectoryUser::default));
        assert!(by_fn.user("9").is_some());
        assert!(by_fn.user("7").is_none());
    }

    /// The cached directory parses what its source stores, serves repeats from the cache
    /// (absent ids too), stays within its bound, and reads the source again once told to
    /// forget; unattached it knows nobody.
    #[test]
    fn cached_directory() {
        let directory = CachedDirectory::with_capacity(2);
        assert!(directory.user("1").is_none());

        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        directory.attach(Arc::new(move |id: &str| {
            counted.fetch_add(1, Ordering::Relaxed);
            match id {
                "1" => Some(r#"{"id":"1","login":"a@example.com","role":"admin"}"#.to_owned()),
                "2" => Some("not json".to_owned()),
                _ => None,
            }
        }));
        let one = directory.user("1").unwrap();
        assert_eq!(one.login.as_deref(), Some("a@example.com"));
        assert_eq!(one.is_admin(), Some(true));
        assert_eq!(directory.user("1"), Some(one));
        assert_eq!(reads.load(Ordering::Relaxed), 1);

        assert!(directory.user("9").is_none());
        assert!(directory.user("9").is_none());
        assert_eq!(reads.load(Ordering::Relaxed), 2);

        // A third id exceeds the bound of 2: the cache starts over.
        assert!(directory.user("2").is_none(), "unparsable reads as unknown");
        assert!(directory.user("1").is_some());
        assert_eq!(reads.load(Ordering::Relaxed), 4);

        directory.forget();
        assert!(directory.user("1").is_some());
        assert_eq!(reads.load(Ordering::Relaxed), 5);
    }
}
