//! The enterprise's groups and their memberships (CONTRACT §3.4).
//!
//! Seeded from the configured seed with an RNG of their own, so adding groups changes no event
//! or user the generator makes. A few `managed_group`s hold random managed users; the
//! `all_users_group` holds every current managed user. Memberships are served only for users
//! still in the enterprise: a deleted user leaves every group at once.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::clock::box_time;
use crate::enterprise::{Enterprise, SimUser, UserKind};

/// Names of the seeded managed groups (Box names are free text; one has a space and an `&`).
const SEEDED: &[&str] = &[
    "Finance",
    "Engineering",
    "Sales & Marketing",
    "Contractors",
    "Executives",
];

/// Name of the enterprise-wide group Box keeps itself.
pub const ALL_USERS_GROUP: &str = "All Users";

/// `group_type` of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupType {
    /// A group an admin made.
    ManagedGroup,
    /// The group of every user of the enterprise.
    AllUsersGroup,
}

impl GroupType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::ManagedGroup => "managed_group",
            GroupType::AllUsersGroup => "all_users_group",
        }
    }
}

/// One membership of a managed group.
#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub id: String,
    pub user_id: String,
    pub role: &'static str,
    pub created_at: OffsetDateTime,
}

/// A group of the simulated enterprise.
#[derive(Debug, Clone)]
pub(crate) struct SimGroup {
    pub id: String,
    pub name: String,
    pub group_type: GroupType,
    pub created_at: OffsetDateTime,
    /// Explicit members (empty for the all-users group, whose members are computed).
    pub members: Vec<Membership>,
}

/// A group and its current members, as tests read them ([`crate::SimHandle::groups`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    /// Box group id.
    pub id: String,
    /// Group name.
    pub name: String,
    /// `managed_group` or `all_users_group`.
    pub group_type: GroupType,
    /// Ids of the current members, in membership order.
    pub member_ids: Vec<String>,
}

impl SimGroup {
    /// `{"type":"group","id","name","group_type"}`.
    pub fn mini(&self) -> Value {
        json!({"type": "group", "id": self.id, "name": self.name,
            "group_type": self.group_type.as_str()})
    }

    /// Every field this group has (`Group--Full` subset), for `fields` selection.
    fn full(&self) -> serde_json::Map<String, Value> {
        let v = json!({
            "type": "group",
            "id": self.id,
            "name": self.name,
            "group_type": self.group_type.as_str(),
            "created_at": box_time(self.created_at),
            "modified_at": box_time(self.created_at),
            "provenance": "",
            "external_sync_identifier": "",
            "description": "",
            "invitability_level": "admins_only",
            "member_viewability_level": "admins_only",
            "permissable_actions": {"can_invite_as_collaborator": true,
                "can_set_share_level": true, "can_create_accounts": false,
                "can_edit_accounts": false},
        });
        match v {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// The group as `GET /groups` lists it: the mini fields (samples `groups-page.json`), or
    /// with `fields` only `type`, `id` and the requested fields (as for users).
    pub fn to_json(&self, fields: Option<&[String]>) -> Value {
        let full = self.full();
        let keys: Vec<&str> = match fields {
            None => vec!["type", "id", "name", "group_type"],
            Some(requested) => {
                let mut k = vec!["type", "id"];
                k.extend(requested.iter().map(String::as_str));
                k
            }
        };
        let mut out = serde_json::Map::new();
        for k in keys {
            if let Some(v) = full.get(k) {
                out.insert(k.to_owned(), v.clone());
            }
        }
        Value::Object(out)
    }

    /// Current memberships: explicit ones whose user is still a managed user of `ent`, or
    /// every managed user for the all-users group (membership id derived from group and user).
    pub fn memberships<'e>(&self, ent: &'e Enterprise) -> Vec<(Membership, &'e SimUser)> {
        let current = |id: &str| {
            ent.users
                .iter()
                .find(|u| u.id == id && u.kind == UserKind::Managed)
        };
        match self.group_type {
            GroupType::ManagedGroup => self
                .members
                .iter()
                .filter_map(|m| current(&m.user_id).map(|u| (m.clone(), u)))
                .collect(),
            GroupType::AllUsersGroup => ent
                .users
                .iter()
                .filter(|u| u.kind == UserKind::Managed)
                .map(|u| {
                    let m = Membership {
                        id: format!("{}{}", self.id, u.id),
                        user_id: u.id.clone(),
                        role: "member",
                        created_at: self.created_at,
                    };
                    (m, u)
                })
                .collect(),
        }
    }

    /// The group as tests read it.
    pub fn info(&self, ent: &Enterprise) -> GroupInfo {
        GroupInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            group_type: self.group_type,
            member_ids: self
                .memberships(ent)
                .into_iter()
                .map(|(m, _)| m.user_id)
                .collect(),
        }
    }
}

/// A `group_membership` entry (sample `group-memberships-page.json`).
pub(crate) fn membership_json(m: &Membership, user: &SimUser, group: &SimGroup) -> Value {
    json!({
        "type": "group_membership",
        "id": m.id,
        "user": user.mini(),
        "group": group.mini(),
        "role": m.role,
        "created_at": box_time(m.created_at),
        "modified_at": box_time(m.created_at),
    })
}

/// The seeded groups: [`SEEDED`] managed groups (each managed user joins each with
/// probability 1/4, and every group gets at least one member) and the all-users group.
pub(crate) fn seed(seed: u64, ent: &Enterprise, now: OffsetDateTime) -> Vec<SimGroup> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6772_6f75_7073);
    let managed: Vec<&SimUser> = ent
        .users
        .iter()
        .filter(|u| u.kind == UserKind::Managed)
        .collect();
    let mut next_id: u64 = 100_000_000 + rng.random_range(0..100_000_000);
    let mut next_membership: u64 = 5_000_000_000 + rng.random_range(0..1_000_000_000);
    let mut groups = Vec::new();
    for name in SEEDED {
        next_id += rng.random_range(1..1_000_000);
        let created_at = now - time::Duration::days(rng.random_range(10..1000));
        let mut members = Vec::new();
        for u in &managed {
            if rng.random_bool(0.25) {
                next_membership += rng.random_range(1..10_000);
                members.push(Membership {
                    id: next_membership.to_string(),
                    user_id: u.id.clone(),
                    role: if rng.random_bool(0.1) {
                        "admin"
                    } else {
                        "member"
                    },
                    created_at,
                });
            }
        }
        if members.is_empty() {
            if let Some(u) = managed.get(rng.random_range(0..managed.len().max(1))) {
                next_membership += 1;
                members.push(Membership {
                    id: next_membership.to_string(),
                    user_id: u.id.clone(),
                    role: "member",
                    created_at,
                });
            }
        }
        groups.push(SimGroup {
            id: next_id.to_string(),
            name: (*name).to_owned(),
            group_type: GroupType::ManagedGroup,
            created_at,
            members,
        });
    }
    next_id += rng.random_range(1..1_000_000);
    groups.push(SimGroup {
        id: next_id.to_string(),
        name: ALL_USERS_GROUP.to_owned(),
        group_type: GroupType::AllUsersGroup,
        created_at: now - time::Duration::days(3000),
        members: Vec::new(),
    });
    groups
}

/// Adds a managed group named `name` with these members (ids not in the enterprise are kept
/// and simply never served). Returns the new group's id.
pub(crate) fn add(
    groups: &mut Vec<SimGroup>,
    name: &str,
    member_ids: &[String],
    now: OffsetDateTime,
) -> String {
    let max_id = groups
        .iter()
        .filter_map(|g| g.id.parse::<u64>().ok())
        .max()
        .unwrap_or(100_000_000);
    let id = (max_id + 1).to_string();
    let members = member_ids
        .iter()
        .enumerate()
        .map(|(i, u)| Membership {
            id: format!("{id}{i:04}"),
            user_id: u.clone(),
            role: "member",
            created_at: now,
        })
        .collect();
    groups.push(SimGroup {
        id: id.clone(),
        name: name.to_owned(),
        group_type: GroupType::ManagedGroup,
        created_at: now,
        members,
    });
    id
}
