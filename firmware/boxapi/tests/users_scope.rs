//! The users sync against the Box simulator: scoped groups resolved by name and recorded on
//! each stored user, and users Box no longer lists pruned after a complete sync only.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup should panic loudly

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use box_sim::{BoxSim, Endpoint, ErrorBody, Fault, FaultKind, SimConfig, SimHandle};
use boxidr_boxapi::users::{self, SCOPE_GROUPS_KEY, SyncReport};
use boxidr_boxapi::{ApiError, Grant, TokenManager, UsersClient, http};
use boxidr_config::Scope;
use boxidr_store::Store;
use serde_json::Value;
use url::Url;

struct Rig {
    sim: SimHandle,
    tokens: TokenManager,
    client: UsersClient,
    store: Store,
    _dir: tempfile::TempDir,
}

/// A simulator with more users than one page (1000) holds, a store, and a token manager.
async fn rig(users: usize) -> Rig {
    let config = SimConfig {
        rate: 0.0,
        backlog: 0,
        users,
        ..SimConfig::default()
    };
    let sim = BoxSim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = http::client(Duration::from_secs(20)).unwrap();
    let auth = common::auth_client(&sim, &config, http.clone());
    let grant = Grant::ClientCredentials {
        enterprise_id: config.enterprise_id.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir).await;
    let tokens = TokenManager::load(auth, grant, store.clone())
        .await
        .unwrap();
    let client = UsersClient::new(http, &Url::parse(&sim.api_base()).unwrap(), 8 << 20);
    Rig {
        sim,
        tokens,
        client,
        store,
        _dir: dir,
    }
}

impl Rig {
    async fn sync(&self, scope: &Scope) -> Result<SyncReport, ApiError> {
        users::sync(&self.tokens, &self.client, &self.store, scope).await
    }

    /// Every stored user, id → JSON.
    async fn stored(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut after = None;
        loop {
            let page = self.store.users_after(after.clone(), 500).await.unwrap();
            let Some(last) = page.last() else {
                return out;
            };
            after = Some(last.id.clone());
            for u in page {
                out.insert(u.id, serde_json::from_str(&u.json).unwrap());
            }
        }
    }

    fn managed(&self) -> BTreeSet<String> {
        self.sim.managed_user_ids().into_iter().collect()
    }
}

fn server_error() -> FaultKind {
    FaultKind::ServerError {
        status: 500,
        body: ErrorBody::Json,
        retry_after: None,
    }
}

/// Scoped group names resolve exactly and case-insensitively (two Box groups may share a
/// name), an unknown name is reported and not fatal, and every stored user records exactly the
/// scoped groups the simulator says it is in. A failed group lookup writes nothing; without
/// scoped groups the stored user is Box's object alone.
#[tokio::test(flavor = "multi_thread")]
async fn scoped_groups_are_resolved_and_recorded() {
    let rig = rig(1200).await;
    let some: Vec<String> = rig
        .sim
        .managed_user_ids()
        .into_iter()
        .skip(3)
        .take(2)
        .collect();
    rig.sim.add_group("finance", &some);
    rig.sim.add_group("Finance Auditors", &some);
    let scope = Scope {
        users: vec![],
        groups: vec![
            "FINANCE".into(),
            "Engineering".into(),
            "No Such Group".into(),
        ],
    };

    rig.sim.faults().add(
        Fault::new(server_error())
            .on(Endpoint::Groups)
            .after(1)
            .times(1),
    );
    let err = rig.sync(&scope).await.unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 500, .. }), "{err}");
    assert!(
        rig.stored().await.is_empty(),
        "a failed group lookup writes nothing"
    );
    assert!(
        rig.sim.requests().iter().all(|r| r.path != "/2.0/users"),
        "users are not read before the groups are known"
    );

    let report = rig.sync(&scope).await.unwrap();
    assert_eq!(report.unknown_groups, ["No Such Group"]);
    assert_eq!(report.scope_groups, 3, "Finance, finance and Engineering");
    assert_eq!(report.pages, 2);

    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for g in rig.sim.groups() {
        if ["finance", "engineering"].contains(&g.name.to_lowercase().as_str()) {
            for id in g.member_ids {
                want.entry(id).or_default().insert(g.name.clone());
            }
        }
    }
    assert!(want.len() > 10, "the seeded groups have members");
    let stored = rig.stored().await;
    assert_eq!(
        stored.keys().cloned().collect::<BTreeSet<_>>(),
        rig.managed()
    );
    let mut members = 0;
    for (id, user) in &stored {
        let got: BTreeSet<String> = user[SCOPE_GROUPS_KEY]
            .as_array()
            .unwrap_or_else(|| panic!("{id} lacks {SCOPE_GROUPS_KEY}: {user}"))
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want.get(id).cloned().unwrap_or_default(), "user {id}");
        members += usize::from(!got.is_empty());
    }
    assert_eq!(report.scope_members, members);
    for id in &some {
        assert!(
            want[id].contains("finance") && want[id].len() <= 3,
            "{id}: {:?}",
            want[id]
        );
    }

    let report = rig.sync(&Scope::default()).await.unwrap();
    assert_eq!((report.scope_groups, report.scope_members), (0, 0));
    assert!(
        rig.stored()
            .await
            .values()
            .all(|u| u.get(SCOPE_GROUPS_KEY).is_none()),
        "no scoped groups: the stored user is Box's object alone"
    );
}

/// A user deleted in Box stays in the store after a sync that fails on its second page, and is
/// removed by the next complete sync (which prunes nobody else).
#[tokio::test(flavor = "multi_thread")]
async fn users_box_no_longer_lists_are_pruned_after_a_complete_sync_only() {
    let rig = rig(1200).await;
    let report = rig.sync(&Scope::default()).await.unwrap();
    assert_eq!(report.pruned, 0);
    assert_eq!(report.pages, 2);
    let before = rig.stored().await;
    assert_eq!(before.len(), rig.managed().len());

    let gone = rig.sim.managed_user_ids()[5].clone();
    let gone_late = rig.sim.managed_user_ids()[1100].clone();
    assert!(rig.sim.remove_user(&gone) && rig.sim.remove_user(&gone_late));

    // The first page is served, the second fails: the sync did not see every user.
    rig.sim.faults().add(
        Fault::new(server_error())
            .on(Endpoint::Users)
            .after(1)
            .times(1),
    );
    let err = rig.sync(&Scope::default()).await.unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 500, .. }), "{err}");
    let after_failure = rig.stored().await;
    assert!(after_failure.contains_key(&gone) && after_failure.contains_key(&gone_late));
    assert_eq!(
        after_failure.len(),
        before.len(),
        "a failed sync prunes nothing"
    );

    let report = rig.sync(&Scope::default()).await.unwrap();
    assert_eq!(report.pruned, 2, "{report:?}");
    let after = rig.stored().await;
    assert!(!after.contains_key(&gone) && !after.contains_key(&gone_late));
    assert_eq!(
        after.keys().cloned().collect::<BTreeSet<_>>(),
        rig.managed()
    );

    let report = rig.sync(&Scope::default()).await.unwrap();
    assert_eq!(report.pruned, 0, "nothing more to prune");
}
