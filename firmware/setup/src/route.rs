//! Every route of the setup page in one table: the [`Page`] the router matches on (a `match`
//! the compiler checks for completeness), [`ROUTES`] for the crawler test, and what a route
//! needs besides its handler (a larger body for uploads, the Box pages' script). URL paths are
//! compared here and nowhere else.

use crate::http::Method;

macro_rules! pages {
    ($($(#[doc = $doc:literal])* $page:ident = $method:literal $path:literal,)*) => {
        /// One route: a method (`HEAD` goes with `GET`) and a path.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Page {
            $($(#[doc = $doc])* $page,)*
        }

        /// Every route of the setup page, as (path, method; `HEAD` goes with `GET`). The
        /// router answers 404 to anything not listed here, so this is the single list of what
        /// can be reached: `tests/routes.rs` walks it (claim, login, CSRF and Origin gates)
        /// and checks that every link and form on the pages points into it.
        pub const ROUTES: &[(&str, &str)] = &[$(($path, $method),)*];

        impl Page {
            /// The route of a request, if there is one.
            pub(crate) fn find(method: Method, path: &str) -> Option<Self> {
                let method = match method {
                    Method::Get | Method::Head => "GET",
                    Method::Post => "POST",
                    Method::Other => return None,
                };
                match (method, path) {
                    $(($method, $path) => Some(Self::$page),)*
                    _ => None,
                }
            }

            /// The route's path.
            pub(crate) fn path(self) -> &'static str {
                match self {
                    $(Self::$page => $path,)*
                }
            }
        }
    };
}

pages! {
    StyleCss = "GET" "/static/style.css",
    CopyJs = "GET" "/static/copy.js",
    /// First boot: setup code + new password (only while no password is set).
    ClaimForm = "GET" "/claim",
    Claim = "POST" "/claim",
    LoginForm = "GET" "/login",
    Login = "POST" "/login",
    /// Box's redirect back (bound to the session by `state` + binder cookie).
    OauthCallback = "GET" "/oauth/callback",
    Home = "GET" "/",
    Logout = "POST" "/logout",
    Status = "GET" "/status",
    StatusJson = "GET" "/status.json",
    BoxSettings = "GET" "/box",
    BoxApp = "POST" "/box/app",
    BoxConnect = "POST" "/box/connect",
    BoxCcg = "POST" "/box/ccg",
    InsightIdr = "GET" "/insightidr",
    InsightIdrSave = "POST" "/insightidr",
    Mapping = "GET" "/mapping",
    MappingSave = "POST" "/mapping",
    Collection = "GET" "/collection",
    CollectionSave = "POST" "/collection",
    Password = "GET" "/password",
    PasswordChange = "POST" "/password",
    Certificate = "GET" "/certificate",
    CertificateUpload = "POST" "/certificate",
    /// "Test connection": the Platform API key against `/validate`.
    InsightIdrTest = "POST" "/insightidr/test",
    /// "Send test event" (the test buttons: nothing saved, queued or counted).
    CollectorTest = "POST" "/insightidr/test-collector",
    /// "Send test record".
    LogSearchTest = "POST" "/insightidr/test-log-search",
    /// Box "Test".
    BoxTest = "POST" "/box/test",
    /// Three stored Box users as InsightIDR accounts, nothing saved.
    MappingPreview = "POST" "/mapping/preview",
    ScopeUpload = "POST" "/collection/scope",
    ScopeClear = "POST" "/collection/scope/clear",
    ScopeCsv = "GET" "/collection/scope.csv",
    Metrics = "GET" "/metrics",
    Maintenance = "GET" "/maintenance",
    ConfigExport = "GET" "/maintenance/config.toml",
    ConfigImport = "POST" "/maintenance/import",
    MetricsToken = "POST" "/maintenance/metrics-token",
    SupportBundle = "GET" "/maintenance/bundle.tar.gz",
    /// Dead letters (records InsightIDR refused for good) as JSON lines.
    DeadLettersDownload = "GET" "/maintenance/dead-letters.jsonl",
    /// Removes the dead letters up to the newest one the page showed.
    DeadLettersRemove = "POST" "/maintenance/dead-letters/remove",
}

impl Page {
    /// Its form is `multipart/form-data` with a file input: the body may be up to
    /// [`crate::http::MAX_UPLOAD_BYTES`].
    pub(crate) fn takes_upload(self) -> bool {
        matches!(
            self,
            Self::ScopeUpload
                | Self::ConfigImport
                | Self::CertificateUpload
                | Self::InsightIdrSave
                | Self::InsightIdrTest
                | Self::CollectorTest
                | Self::LogSearchTest
        )
    }

    /// It renders the Box page, which loads `/static/copy.js` (the CSP allows `script-src
    /// 'self'` there only).
    pub(crate) fn loads_script(self) -> bool {
        matches!(
            self,
            Self::BoxSettings | Self::BoxApp | Self::BoxConnect | Self::BoxCcg | Self::BoxTest
        )
    }

    /// Reachable without an admin session: the first-boot claim always, login and Box's
    /// redirect back once claimed, the two static files.
    pub(crate) fn before_login(self, claimed: bool) -> bool {
        match self {
            Self::StyleCss | Self::CopyJs | Self::ClaimForm | Self::Claim => true,
            Self::LoginForm | Self::Login | Self::OauthCallback => claimed,
            _ => false,
        }
    }
}

/// The three settings forms that write the TOML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingsPage {
    /// InsightIDR destination: Collector, Log Search, Platform API key.
    InsightIdr,
    /// Accounts and domain.
    Mapping,
    /// Collection: stream, backfill, polling, event types, outbound proxy (and the scope).
    Collection,
}

impl SettingsPage {
    /// Where the page is shown and its form posts.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::InsightIdr => Page::InsightIdr.path(),
            Self::Mapping => Page::Mapping.path(),
            Self::Collection => Page::Collection.path(),
        }
    }
}

impl Page {
    /// The settings form shown at, or saved by, this route.
    pub(crate) fn settings_page(self) -> Option<SettingsPage> {
        match self {
            Self::InsightIdr | Self::InsightIdrSave => Some(SettingsPage::InsightIdr),
            Self::Mapping | Self::MappingSave => Some(SettingsPage::Mapping),
            Self::Collection | Self::CollectionSave => Some(SettingsPage::Collection),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed route is found by its method and path (and `HEAD` like `GET`), and
    /// nothing else is.
    #[test]
    fn the_table_is_the_router() {
        for (path, method) in ROUTES {
            let m = if *method == "GET" {
                Method::Get
            } else {
                Method::Post
            };
            let page = Page::find(m, path).unwrap();
            assert_eq!(page.path(), *path);
            if *method == "GET" {
                assert_eq!(Page::find(Method::Head, path), Some(page));
            }
        }
        assert_eq!(Page::find(Method::Get, "/box/app"), None, "POST only");
        assert_eq!(Page::find(Method::Post, "/status"), None, "GET only");
        assert_eq!(Page::find(Method::Other, "/status"), None);
        assert_eq!(Page::find(Method::Get, "/status/"), None, "exact paths");
        assert!(Page::InsightIdrSave.takes_upload() && !Page::InsightIdr.takes_upload());
        assert!(Page::BoxTest.loads_script() && !Page::Status.loads_script());
        for page in [
            SettingsPage::InsightIdr,
            SettingsPage::Mapping,
            SettingsPage::Collection,
        ] {
            let get = Page::find(Method::Get, page.path()).unwrap();
            let post = Page::find(Method::Post, page.path()).unwrap();
            assert_eq!(
                (get.settings_page(), post.settings_page()),
                (Some(page), Some(page))
            );
        }
    }
}
