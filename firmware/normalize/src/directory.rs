//! The Box user directory as the renderer sees it: login, name, status and role by user id.
//!
//! The users sync stores each user as the JSON object Box sent from `GET /2.0/users`
//! (`shared/box/CONTRACT.md` §3.2, fields `name,login,status,role,enterprise`).
//! [`DirectoryUser::from_json`] reads that object leniently; [`UserDirectory`] is the lookup
//! the sinks implement over the store (a fake is any map or closure).

use std::collections::{BTreeMap, HashMap};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
