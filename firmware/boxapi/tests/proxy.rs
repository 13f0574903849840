//! Box calls through a real outbound proxy (Debian's tinyproxy, started on loopback by the test):
//! without authentication, with Basic authentication (right, missing and wrong credentials),
//! and a proxy that is down. `tools/test-all.sh` installs tinyproxy; without it (a developer
//! machine) the tests say so and pass only when `BOXIDR_SKIP_PROXY=1` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed setup should panic loudly

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use box_sim::{BoxSim, SimConfig};
use boxidr_boxapi::events::From;
use boxidr_boxapi::{ApiError, EventsClient, EventsRequest, Recovery, http};
use boxidr_model::{Secret, StreamType};
use url::Url;

/// A tinyproxy child on 127.0.0.1, killed on drop.
struct Tinyproxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Tinyproxy {
    fn url(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}", self.port)).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts tinyproxy, or `None` when it is not installed and skipping was asked for.
fn tinyproxy(basic_auth: Option<(&str, &str)>) -> Option<Tinyproxy> {
    let binary = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(
            std::env::var_os("BOXIDR_SKIP_PROXY").is_some(),
            "tinyproxy is not installed (apt-get install tinyproxy), or set BOXIDR_SKIP_PROXY=1"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let auth = basic_auth.map_or(String::new(), |(u, p)| format!("BasicAuth {u} {p}\n"));
    let conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n\
         LogLevel Info\nLogFile \"{log}\"\nDisableViaHeader Yes\n{auth}",
        log = dir.path().join("tinyproxy.log").display(),
    );
    let conf_path = dir.path().join("tinyproxy.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new(binary)
        .arg("-d")
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ready once it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(Tinyproxy { child, port, dir });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("tinyproxy did not start on port {port}");
}

fn quiet() -> SimConfig {
    SimConfig {
        rate: 0.0,
        backlog: 20,
        ..SimConfig::default()
    }
}

fn request() -> EventsRequest {
    EventsRequest {
        stream: StreamType::AdminLogsStreaming,
        from: From::Start,
        limit: 100,
        created_after: None,
        created_before: None,
        event_types: Vec::new(),
    }
}

/// A token from the simulator, fetched directly.
async fn token(sim: &box_sim::SimHandle, config: &SimConfig) -> Secret {
    let auth = common::auth_client(sim, config, http::client(Duration::from_secs(5)).unwrap());
    auth.client_credentials(&config.enterprise_id)
        .await
        .unwrap()
        .access_token
}

fn events_via(sim: &box_sim::SimHandle, proxy: &reqwest::Proxy) -> EventsClient {
    let client = http::client_via(Duration::from_secs(5), Some(proxy), None).unwrap();
    EventsClient::new(client, &Url::parse(&sim.api_base()).unwrap(), 1 << 20)
}

/// Without authentication: the token grant and the events page both go through the proxy
/// (its log shows them), and the page is the simulator's.
#[tokio::test]
async fn through_a_proxy() {
    let Some(proxy) = tinyproxy(None) else { return };
    let config = quiet();
    let sim = BoxSim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let via = http::proxy(&proxy.url(), None, None, &[]).unwrap();
    let client = http::client_via(Duration::from_secs(5), Some(&via), None).unwrap();
    let auth = common::auth_client(&sim, &config, client.clone());
    let token = auth
        .client_credentials(&config.enterprise_id)
        .await
        .unwrap()
        .access_token;
    let page = events_via(&sim, &via)
        .fetch(&token, &request())
        .await
        .unwrap();
    assert_eq!(page.events.len(), 20);
    let log = proxy.log();
    assert!(log.contains("/oauth2/token"), "{log}");
    assert!(log.contains("/2.0/events"), "{log}");

    // no_proxy: the simulator's address is reached directly, the proxy sees nothing new.
    let direct = http::proxy(&proxy.url(), None, None, &["127.0.0.1".to_owned()]).unwrap();
    let before = proxy.log().matches("/2.0/events").count();
    events_via(&sim, &direct)
        .fetch(&token, &request())
        .await
        .unwrap();
    assert_eq!(proxy.log().matches("/2.0/events").count(), before);
    sim.shutdown().await;
}

/// With Basic authentication: the right user and password pass; none, or a wrong password,
/// is a proxy error that says to set them (not "Box refused"), and is retried, not a halt.
#[tokio::test]
async fn proxy_with_authentication() {
    let Some(proxy) = tinyproxy(Some(("boxidr", "s3cret-proxy"))) else {
        return;
    };
    let config = quiet();
    let sim = BoxSim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let token = token(&sim, &config).await;
    let password = Secret::new("s3cret-proxy".to_owned());
    let good = http::proxy(&proxy.url(), Some("boxidr"), Some(&password), &[]).unwrap();
    let page = events_via(&sim, &good)
        .fetch(&token, &request())
        .await
        .unwrap();
    assert_eq!(page.events.len(), 20);

    let wrong_password = Secret::new("nope".to_owned());
    for proxy in [
        http::proxy(&proxy.url(), None, None, &[]).unwrap(),
        http::proxy(&proxy.url(), Some("boxidr"), Some(&wrong_password), &[]).unwrap(),
    ] {
        let err = events_via(&sim, &proxy)
            .fetch(&token, &request())
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Proxy { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("outbound proxy") && text.contains("password"),
            "{text}"
        );
        assert!(matches!(err.recovery(), Recovery::Retry { .. }));
    }
    sim.shutdown().await;
}

/// A proxy that is down: a network error (retried), and the password never appears in it.
#[tokio::test]
async fn proxy_that_is_down() {
    let config = quiet();
    let sim = BoxSim::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let token = token(&sim, &config).await;
    let down = Url::parse(&format!("http://127.0.0.1:{}", free_port())).unwrap();
    let password = Secret::new("never-shown-7731".to_owned());
    let proxy = http::proxy(&down, Some("boxidr"), Some(&password), &[]).unwrap();
    let err = events_via(&sim, &proxy)
        .fetch(&token, &request())
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Network { .. }), "{err:?}");
    assert!(matches!(err.recovery(), Recovery::Retry { .. }));
    assert!(!format!("{err:?} {err}").contains("never-shown-7731"));
    sim.shutdown().await;
}
