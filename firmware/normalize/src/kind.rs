//! What a Box event is, for InsightIDR: the `boxidr_kind` of its raw record, and whether it
//! is an ingress authentication that becomes a UEF line.
//!
//! Box's `event_type` is an open set (`shared/box/CONTRACT.md` §2.5): unknown or missing types
//! are [`Kind::Other`], never an error. The tables below follow the proposed mapping of
//! `shared/insightidr/CONTRACT.md` §4 over the event types of Box's OpenAPI enum:
//!
//! | kind | event types |
//! |---|---|
//! | `ingress` | `LOGIN`, `FAILED_LOGIN`, `ADD_LOGIN_ACTIVITY_DEVICE`, `USER_AUTHENTICATE_OAUTH2_ACCESS_TOKEN_CREATE` |
//! | `admin_activity` | [`ADMIN_ACTIVITY`]: `ADMIN_LOGIN`, user, group, role, application, MFA, policy, retention, legal hold and barrier changes |
//! | `alert` | `SHIELD_ALERT`, other `SHIELD_*` enforcement events, `EDR_CROWDSTRIKE_*`, [`ALERTS`] |
//! | `file_activity` | [`FILE_ACTIVITY`], and every `ITEM_*`, `COLLABORATION_*`, `COLLAB_*`, `SIGN_*` type |
//! | `other` | everything else, including unknown and missing types |
//!
//! `ADMIN_LOGIN` (an admin logs in to a managed user's account) is both: its raw record is
//! `admin_activity`, and it also becomes a UEF `SUCCESS` for the acting admin.

use boxidr_model::BoxEvent;

/// The `boxidr_kind` of a raw record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A login, failed login, new login device or OAuth token grant.
    Ingress,
    /// An administrator changed users, roles, groups, apps or policies.
    AdminActivity,
    /// Someone touched content: upload, download, preview, share, collaboration...
    FileActivity,
    /// Box Shield and other security detections.
    Alert,
    /// Anything not classified above, including event types Box adds later.
    Other,
}

impl Kind {
    /// Every kind, in a stable order (for counters and tests).
    pub const ALL: [Kind; 5] = [
        Kind::Ingress,
        Kind::AdminActivity,
        Kind::FileActivity,
        Kind::Alert,
        Kind::Other,
    ];

    /// The stable wire name (`boxidr_kind` in raw records, metric labels).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "ingress",
            Self::AdminActivity => "admin_activity",
            Self::FileActivity => "file_activity",
            Self::Alert => "alert",
            Self::Other => "other",
        }
    }

    /// Whether a raw record of this kind goes to Log Search.
    ///
    /// Ingress and admin activity always do; the other kinds only when "send unparsed logs"
    /// is on (`mapping.send_unparsed`, on by default). Malformed events and ingress events
    /// refused as UEF are sent regardless (ARCHITECTURE invariant 6): see
    /// [`crate::render_record`].
    pub const fn is_sent(self, send_unparsed: bool) -> bool {
        match self {
            Self::Ingress | Self::AdminActivity => true,
            Self::FileActivity | Self::Alert | Self::Other => send_unparsed,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The UEF `authentication_result` of an ingress event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthResult {
    /// `SUCCESS`.
    Success,
    /// `FAILURE`.
    Failure,
}

impl AuthResult {
    /// The UEF value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
        }
    }
}

/// Box's event type for an OAuth 2 access token grant: ingress only behind
/// `mapping.oauth_as_ingress` (it is frequent and mostly machine traffic).
pub const OAUTH_TOKEN_CREATE: &str = "USER_AUTHENTICATE_OAUTH2_ACCESS_TOKEN_CREATE";

/// Event types whose raw record is `ingress`.
pub const INGRESS: &[&str] = &[
    "LOGIN",
    "FAILED_LOGIN",
    "ADD_LOGIN_ACTIVITY_DEVICE",
    OAUTH_TOKEN_CREATE,
];

/// Event types whose raw record is `admin_activity`.
pub const ADMIN_ACTIVITY: &[&str] = &[
    "ADMIN_LOGIN",
    "NEW_USER",
    "EDIT_USER",
    "DELETE_USER",
    "CHANGE_ADMIN_ROLE",
    "ACCESS_GRANTED",
    "ACCESS_REVOKED",
    "ADD_DEVICE_ASSOCIATION",
    "REMOVE_DEVICE_ASSOCIATION",
    "REMOVE_LOGIN_ACTIVITY_DEVICE",
    "APPLICATION_CREATED",
    "APPLICATION_PUBLIC_KEY_ADDED",
    "APPLICATION_PUBLIC_KEY_DELETED",
    "ENTERPRISE_APP_AUTHORIZATION_UPDATE",
    "ENABLE_MULTI_FACTOR_AUTH",
    "DISABLE_MULTI_FACTOR_AUTH",
    "ENABLE_TWO_FACTOR_AUTH",
    "OAUTH2_ACCESS_TOKEN_REVOKE",
    "OAUTH2_REFRESH_TOKEN_REVOKE",
    "EXTERNAL_COLLAB_SECURITY_SETTINGS",
    "EMAIL_ALIAS_CONFIRM",
    "EMAIL_ALIAS_PRIMARY",
    "EMAIL_ALIAS_REMOVE",
    "EMAIL_UPLOAD_DISABLED",
    "EMAIL_UPLOAD_ENABLED",
    "GROUP_CREATION",
    "GROUP_DELETION",
    "GROUP_EDITED",
    "GROUP_ADD_USER",
    "GROUP_REMOVE_USER",
    "GROUP_ADD_ITEM",
    "GROUP_REMOVE_ITEM",
    "GROUP_ADMIN_CREATED",
    "GROUP_ADMIN_DELETED",
    "GROUP_ADMIN_PERMISSIONS_UPDATED",
    "MASTER_INVITE_ACCEPT",
    "MASTER_INVITE_REJECT",
    "LEGAL_HOLD_ASSIGNMENT_CREATE",
    "LEGAL_HOLD_ASSIGNMENT_DELETE",
    "LEGAL_HOLD_POLICY_CREATE",
    "LEGAL_HOLD_POLICY_DELETE",
    "LEGAL_HOLD_POLICY_UPDATE",
    "DATA_RETENTION_CREATE_RETENTION",
    "DATA_RETENTION_REMOVE_RETENTION",
    "RETENTION_POLICY_ASSIGNMENT_ADD",
    "METADATA_TEMPLATE_CREATE",
    "METADATA_TEMPLATE_DELETE",
    "METADATA_TEMPLATE_UPDATE",
    "METADATA_CASCADE_POLICY_CREATE",
    "CONTENT_WORKFLOW_AUTOMATION_ADD",
    "CONTENT_WORKFLOW_AUTOMATION_DELETE",
    "CONTENT_WORKFLOW_POLICY_ADD",
    "WORKFLOW_AUTOMATION_CREATE",
    "WORKFLOW_AUTOMATION_DELETE",
    "WORKFLOW_AUTOMATION_UPDATE",
    "CONTENT_RECOVERY_REPORT_CREATE",
    "CONTENT_RECOVERY_REPORT_DELETE",
    "CONTENT_RECOVERY_REPORT_INITIATE",
    "WATERMARK_LABEL_CREATE",
    "WATERMARK_LABEL_DELETE",
    "SHIELD_ACCESS_POLICY_CREATED",
    "SHIELD_ACCESS_POLICY_DELETED",
    "SHIELD_ACCESS_POLICY_UPDATED",
    "SHIELD_INFORMATION_BARRIER_ENABLED",
    "SHIELD_INFORMATION_BARRIER_DISABLED",
    "SHIELD_INFORMATION_BARRIER_PENDING",
];

/// Event types whose raw record is `alert`, besides the `SHIELD_` and `EDR_CROWDSTRIKE_`
/// prefixes (checked after [`ADMIN_ACTIVITY`], which holds the Shield policy changes).
pub const ALERTS: &[&str] = &[
    "SHIELD_ALERT",
    "AI_SECURITY_DETECTION",
    "FILE_MARKED_MALICIOUS",
    "DEVICE_TRUST_CHECK_FAILED",
    "CONTENT_WORKFLOW_ABNORMAL_DOWNLOAD_ACTIVITY",
    "CONTENT_WORKFLOW_SHARING_POLICY_VIOLATION",
    "CONTENT_WORKFLOW_UPLOAD_POLICY_VIOLATION",
    "ILLEGAL_ITEM_OWNERSHIP_TRANSFER_BY_USER",
];

/// Event types whose raw record is `file_activity`, besides the `ITEM_`, `COLLABORATION_`,
/// `COLLAB_` and `SIGN_` prefixes.
pub const FILE_ACTIVITY: &[&str] = &[
    "UPLOAD",
    "DOWNLOAD",
    "PREVIEW",
    "DELETE",
    "UNDELETE",
    "COPY",
    "MOVE",
    "EDIT",
    "RENAME",
    "LOCK",
    "UNLOCK",
    "LOCK_CREATE",
    "LOCK_DESTROY",
    "SHARE",
    "UNSHARE",
    "SHARE_EXPIRATION",
    "UPDATE_SHARE_EXPIRATION",
    "UPDATE_COLLABORATION_EXPIRATION",
    "SHARED_LINK_SEND",
    "SHARED_LINK_REDIRECT_OUT_OF_SHARED_CONTEXT",
    "CHANGE_FOLDER_PERMISSION",
    "ADVANCED_FOLDER_SETTINGS_UPDATE",
    "CONTENT_ACCESS",
    "FILE_VERSION_RESTORE",
    "FILE_WATERMARKED_DOWNLOAD",
    "FILE_REQUEST_CREATE",
    "FILE_REQUEST_DELETE",
    "FILE_REQUEST_UPDATE",
    "FAVORITE",
    "UNFAVORITE",
    "TAG_ITEM_CREATE",
    "COMMENT_CREATE",
    "COMMENT_DELETE",
    "COMMENT_EDIT",
    "ANNOTATIONV2_CREATE",
    "ANNOTATIONV2_DELETE",
    "ANNOTATIONV2_EDIT",
    "TASK_CREATE",
    "TASK_UPDATE",
    "TASK_ASSIGNMENT_CREATE",
    "TASK_ASSIGNMENT_DELETE",
    "TASK_ASSIGNMENT_UPDATE",
    "METADATA_INSTANCE_CREATE",
    "METADATA_INSTANCE_UPDATE",
    "METADATA_INSTANCE_DELETE",
    "METADATA_INSTANCE_COPY",
    "METADATA_CASCADE_POLICY_APPLY",
    "COLLECTION_CREATE",
    "COLLECTION_DELETE",
    "COLLECTION_UPDATE",
    "COLLECTION_ITEM_CREATE",
    "COLLECTION_ITEM_DELETE",
    "COLLECTION_ITEM_UPDATE",
    "SIGNER_DOWNLOADED",
    "SIGNER_FORWARDED",
];

const ALERT_PREFIXES: &[&str] = &["SHIELD_", "EDR_CROWDSTRIKE_"];
const FILE_PREFIXES: &[&str] = &["ITEM_", "COLLABORATION_", "COLLAB_", "SIGN_"];

/// The kind of a Box event, from its `event_type`.
pub fn kind(event: &BoxEvent) -> Kind {
    kind_of_type(event.event_type())
}

/// The kind of an `event_type` value; `None` (missing or not a string) is [`Kind::Other`].
pub fn kind_of_type(event_type: Option<&str>) -> Kind {
    let Some(t) = event_type else {
        return Kind::Other;
    };
    if INGRESS.contains(&t) {
        Kind::Ingress
    } else if ADMIN_ACTIVITY.contains(&t) {
        Kind::AdminActivity
    } else if ALERTS.contains(&t) || ALERT_PREFIXES.iter().any(|p| t.starts_with(p)) {
        Kind::Alert
    } else if FILE_ACTIVITY.contains(&t) || FILE_PREFIXES.iter().any(|p| t.starts_with(p)) {
        Kind::FileActivity
    } else {
        Kind::Other
    }
}

/// The UEF result of an event type, if it is sent as an ingress authentication.
///
/// `LOGIN`, `ADD_LOGIN_ACTIVITY_DEVICE` and `ADMIN_LOGIN` succeed, `FAILED_LOGIN` fails, and
/// [`OAUTH_TOKEN_CREATE`] succeeds only when `oauth_as_ingress` is set.
pub fn ingress_result(event_type: Option<&str>, oauth_as_ingress: bool) -> Option<AuthResult> {
    match event_type? {
        "LOGIN" | "ADD_LOGIN_ACTIVITY_DEVICE" | "ADMIN_LOGIN" => Some(AuthResult::Success),
        "FAILED_LOGIN" => Some(AuthResult::Failure),
        OAUTH_TOKEN_CREATE if oauth_as_ingress => Some(AuthResult::Success),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables do not overlap, so the order of the checks decides nothing by accident.
    #[test]
    fn tables_are_disjoint() {
        let tables = [INGRESS, ADMIN_ACTIVITY, ALERTS, FILE_ACTIVITY];
        for (i, a) in tables.iter().enumerate() {
            for b in &tables[i + 1..] {
                for t in *a {
                    assert!(!b.contains(t), "{t} is in two tables");
                }
            }
        }
    }

    /// One example per row of the mapping table, prefixes included.
    #[test]
    fn mapping_examples() {
        for (t, want) in [
            (Some("LOGIN"), Kind::Ingress),
            (Some("FAILED_LOGIN"), Kind::Ingress),
            (Some(OAUTH_TOKEN_CREATE), Kind::Ingress),
            (Some("ADMIN_LOGIN"), Kind::AdminActivity),
            (Some("CHANGE_ADMIN_ROLE"), Kind::AdminActivity),
            (
                Some("SHIELD_INFORMATION_BARRIER_ENABLED"),
                Kind::AdminActivity,
            ),
            (Some("SHIELD_ALERT"), Kind::Alert),
            (Some("SHIELD_DOWNLOAD_BLOCKED"), Kind::Alert),
            (Some("EDR_CROWDSTRIKE_NO_BOX_TOOLS"), Kind::Alert),
            (Some("FILE_MARKED_MALICIOUS"), Kind::Alert),
            (Some("UPLOAD"), Kind::FileActivity),
            (Some("ITEM_DOWNLOAD"), Kind::FileActivity),
            (Some("COLLABORATION_INVITE"), Kind::FileActivity),
            (Some("SIGN_DOCUMENT_SIGNED"), Kind::FileActivity),
            (Some("TERMS_OF_SERVICE_ACCEPT"), Kind::Other),
            (Some("SOMETHING_BOX_ADDS_NEXT_YEAR"), Kind::Other),
            (Some(""), Kind::Other),
            (Some("login"), Kind::Other),
            (None, Kind::Other),
        ] {
            assert_eq!(kind_of_type(t), want, "{t:?}");
        }
    }

    /// Only ingress and admin activity survive `send_unparsed = false`.
    #[test]
    fn send_unparsed_gate() {
        for kind in Kind::ALL {
            assert!(kind.is_sent(true));
            assert_eq!(
                kind.is_sent(false),
                matches!(kind, Kind::Ingress | Kind::AdminActivity),
                "{kind}"
            );
        }
    }

    /// Ingress results, with OAuth behind its switch.
    #[test]
    fn ingress_results() {
        assert_eq!(
            ingress_result(Some("LOGIN"), false),
            Some(AuthResult::Success)
        );
        assert_eq!(
            ingress_result(Some("ADMIN_LOGIN"), false),
            Some(AuthResult::Success)
        );
        assert_eq!(
            ingress_result(Some("ADD_LOGIN_ACTIVITY_DEVICE"), false),
            Some(AuthResult::Success)
        );
        assert_eq!(
            ingress_result(Some("FAILED_LOGIN"), false),
            Some(AuthResult::Failure)
        );
        assert_eq!(ingress_result(Some(OAUTH_TOKEN_CREATE), false), None);
        assert_eq!(
            ingress_result(Some(OAUTH_TOKEN_CREATE), true),
            Some(AuthResult::Success)
        );
        assert_eq!(ingress_result(Some("UPLOAD"), true), None);
        assert_eq!(ingress_result(None, true), None);
    }
}
