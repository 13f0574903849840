//! `boxidr-boot-test`: boots the built SD-card image under `qemu-system-aarch64 -M virt` (TCG)
//! and checks, within a time limit, what issue 11 lists: the service under its hardened unit
//! with the systemd watchdog armed, as user `boxidr`, with private files; no default
//! credential and no ssh; the setup page over HTTPS with the fingerprint the console printed;
//! claim, password, a saved settings form that survives a reboot; Box events delivered to the
//! InsightIDR simulator; the PL061 GPIO lines following the LED patterns; a frozen service
//! restarted by the watchdog with nothing lost; `systemd-analyze security`.
//!
//! The guest reaches nothing but the simulators: QEMU's user network runs with `restrict=on`,
//! and `guestfwd` rules connect a few guest addresses to box-sim and idr-sim on the host's
//! loopback (through this binary's `relay` mode). The image is never modified: a throw-away
//! copy gets the test-only agent (`guest/`) and a provisioning file pointing at the simulators.
//!
//!   boxidr-boot-test [--image target/image/boxidr-0.1.0.img] [--minutes 40]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Guest-side addresses of the simulators (QEMU guestfwd rules).
const BOX_GUEST: &str = "10.0.2.100";
const IDR_GUEST: &str = "10.0.2.101";
const AGENT_GUEST: &str = "10.0.2.200:7000";
/// The PL061 controller of QEMU's virt machine; line 3 is its power button.
const PL061_LABEL: &str = "9030000.pl061";
const LED_LINES: [u32; 4] = [0, 1, 2, 4];
const PASSWORD: &str = "boot-test correct horse battery";
const AGENT: &str = include_str!("../guest/boxidr-test-agent");
const AGENT_UNIT: &str = include_str!("../guest/boxidr-test-agent.service");

#[derive(Debug, Parser)]
#[command(name = "boxidr-boot-test", version)]
struct Cli {
    #[command(subcommand)]
    sub: Option<Sub>,
    /// The uncompressed image; default: the one `image/build` wrote last.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Work directory (the throw-away disk, console logs).
    #[arg(long, default_value = "target/image/boot-test")]
    work: PathBuf,
    /// Time limit for the whole test, in minutes.
    #[arg(long, default_value_t = 40)]
    minutes: u64,
    /// A newer package of boxidr (same binary, higher version): installed over the image's
    /// in the second boot (the upgrade path: claim, secrets and queue kept). Without it the
    /// upgrade and downgrade checks are skipped.
    #[arg(long)]
    upgrade_deb: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Internal: QEMU's guestfwd `cmd:` runs this per guest connection; it copies between
    /// stdin/stdout (the guest's connection) and a host loopback address.
    #[command(hide = true)]
    Relay { addr: SocketAddr },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Sub::Relay { addr }) = cli.sub {
        return relay(addr);
    }
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls provider was installed twice"))?;
    let rt = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let limit = Duration::from_secs(cli.minutes * 60);
    let outcome = rt.block_on(async { tokio::time::timeout(limit, run(&cli)).await });
    let secs = started.elapsed().as_secs();
    match outcome {
        Ok(Ok(())) => {
            println!("boot test: PASSED in {secs} s (limit {} min)", cli.minutes);
            Ok(())
        }
        Ok(Err(e)) => {
            println!("boot test: FAILED after {secs} s: {e:#}");
            Err(e)
        }
        Err(_) => bail!("boot test: time limit of {} min reached", cli.minutes),
    }
}

fn relay(addr: SocketAddr) -> anyhow::Result<()> {
    let upstream = TcpStream::connect(addr).with_context(|| format!("relay to {addr}"))?;
    let mut up_read = upstream.try_clone()?;
    let mut up_write = upstream;
    let to_host = std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut up_write);
        let _ = up_write.shutdown(std::net::Shutdown::Write);
    });
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match up_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
        }
    }
    drop(out);
    let _ = to_host.join();
    Ok(())
}

fn say(line: impl AsRef<str>) {
    println!("boot-test: {}", line.as_ref());
}

fn sh(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {program}"))?;
    ensure!(out.status.success(), "{program} {args:?}: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Partition `n` (1-based) of a raw disk: byte offset and size.
fn partition(disk: &Path, n: usize) -> anyhow::Result<(u64, u64)> {
    let json: serde_json::Value =
        serde_json::from_str(&sh("sfdisk", &["--json", &disk.to_string_lossy()])?)?;
    let p = &json["partitiontable"]["partitions"][n - 1];
    let start = p["start"].as_u64().context("partition start")?;
    let size = p["size"].as_u64().context("partition size")?;
    Ok((start * 512, size * 512))
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let image = match &cli.image {
        Some(p) => p.clone(),
        None => PathBuf::from(
            std::fs::read_to_string("target/image/latest")
                .context("no --image and no target/image/latest (run image/build first)")?
                .trim(),
        ),
    };
    let work = cli.work.clone();
    std::fs::create_dir_all(&work)?;
    let self_exe = std::env::current_exe()?;

    // The simulators on loopback. idr-sim serves TLS with a certificate for the guest-side
    // address, signed by a CA the guest is given (as an admin would upload Rapid7's CA).
    let box_sim = box_sim::BoxSim::start(
        box_sim::SimConfig {
            rate: 2.0,
            backlog: 40,
            ..box_sim::SimConfig::default()
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    let (material, ca_pem) = tls_for_guest()?;
    let idr = idr_sim::IdrSim::start(
        idr_sim::SimConfig {
            tls: Some(material),
            uef_tls: true,
            logsearch_tls: true,
            ..idr_sim::SimConfig::default()
        },
        idr_sim::Listen::default(),
    )
    .await?;
    let logsearch_host: SocketAddr = idr
        .logsearch_base()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .context("idr-sim Log Search address")?;
    let agent = Agent::bind().await?;
    say(format!(
        "box-sim {}, idr-sim UEF {} / Log Search {}, agent {}",
        box_sim.addr(),
        idr.uef_addr(),
        logsearch_host,
        agent.addr
    ));

    // The throw-away disk: a sparse copy, 1 GiB larger (first-boot growth is checked).
    let disk = work.join("disk.img");
    let t = Instant::now();
    sh(
        "cp",
        &[
            "--sparse=always",
            &image.to_string_lossy(),
            &disk.to_string_lossy(),
        ],
    )?;
    let size = std::fs::metadata(&disk)?.len();
    let original_size = size;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)?
        .set_len(size + (1 << 30))?;
    let (boot_off, _) = partition(&disk, 1)?;
    let (root_off, root_size) = partition(&disk, 2)?;
    let (kernel, initrd) = extract_boot_files(&disk, boot_off, &work)?;
    inject(&disk, root_off, &work, &ca_pem)?;
    say(format!(
        "disk copy with the test agent ready in {:.1} s ({} MiB + 1 GiB)",
        t.elapsed().as_secs_f64(),
        original_size >> 20
    ));

    let https_port = free_port()?;
    let net = [
        format!("hostfwd=tcp:127.0.0.1:{https_port}-:443"),
        guestfwd(&self_exe, &format!("{BOX_GUEST}:80"), box_sim.addr()),
        guestfwd(&self_exe, &format!("{IDR_GUEST}:6514"), idr.uef_addr()),
        guestfwd(&self_exe, &format!("{IDR_GUEST}:443"), logsearch_host),
        guestfwd(&self_exe, AGENT_GUEST, agent.addr),
    ];
    let vm = Vm {
        kernel,
        initrd,
        disk: disk.clone(),
        netdev: format!("user,id=n,restrict=on,{}", net.join(",")),
    };

    // ---- Boot 1: first boot, claim, setup, delivery, LEDs, watchdog.
    let mut guest = vm.boot(&work.join("console-1.log"))?;
    let boot_started = Instant::now();
    let fingerprint = guest
        .console_value("fingerprint=", Duration::from_secs(600))
        .await
        .context("the console never printed the setup page's fingerprint")?;
    let code = guest
        .console_value_after("Setup code (one use", "code=", Duration::from_secs(60))
        .await
        .context("the console never printed the setup code")?;
    say(format!(
        "console after {} s: fingerprint {fingerprint}, setup code {}…",
        boot_started.elapsed().as_secs(),
        &code[..4.min(code.len())]
    ));

    let first = agent.run("systemctl is-system-running --wait; systemctl --no-pager --failed --plain; echo VERSION=$(dpkg-query -W -f '${Version}' boxidr); hostname; cat /boot/firmware/BOXIDR-SETUP.TXT", 600).await?;
    say(format!(
        "system up after {} s",
        boot_started.elapsed().as_secs()
    ));
    print_block("first boot", &first);
    ensure!(
        first.contains(&code) && first.contains(&fingerprint),
        "BOXIDR-SETUP.TXT on the boot partition lacks the code or the fingerprint"
    );
    let hostname = first
        .lines()
        .find(|l| l.starts_with("boxidr-"))
        .context("the host name is not boxidr-XXXX")?
        .to_owned();
    ensure!(
        hostname.len() == "boxidr-".len() + 4,
        "host name {hostname:?}"
    );
    let version = first
        .lines()
        .find_map(|l| l.strip_prefix("VERSION="))
        .context("no package version")?
        .trim()
        .to_owned();
    say(format!(
        "ok: host name {hostname}; BOXIDR-SETUP.TXT holds the code and the fingerprint"
    ));

    check_unit_and_files(&agent).await?;
    check_no_credentials(&agent).await?;
    check_grown(&agent, root_size).await?;
    check_nothing_leaves(&agent).await?;

    // The setup page through the forwarded port, pinned to the console's fingerprint.
    let page = Page::new(https_port, &fingerprint)?;
    page.claim(&code).await?;
    say(
        "ok: claimed with the console's setup code over HTTPS (certificate matched the fingerprint), password set",
    );
    // Box: the app's client ID and secret on the Box page, then "Connect with client
    // credentials" (the enterprise ID), which answers with the Box page and its verdict.
    let cfg = box_sim.config().clone();
    let redirect = format!("{}/oauth/callback", page.base);
    page.post_from(
        "/box",
        "/box/app",
        &[
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.as_str()),
            ("redirect_uri", redirect.as_str()),
        ],
    )
    .await
    .context("saving the Box app (client ID and secret)")?;
    let (status, body) = page
        .submit(
            "/box",
            "/box/ccg",
            &[("enterprise_id", cfg.enterprise_id.as_str())],
        )
        .await
        .context("connecting Box (client credentials)")?;
    ensure!(
        status == 200 && body.contains("Box is connected with client credentials."),
        "connecting Box (client credentials): {status} {}",
        banners_of(&body)
    );
    let token = idr
        .config()
        .tokens
        .first()
        .cloned()
        .context("idr-sim token")?;
    let collector_port = "6514";
    page.post(
        "/insightidr",
        &[
            ("collector_enabled", "on"),
            ("collector_host", IDR_GUEST),
            ("collector_port", collector_port),
            ("collector_ca_file", "/etc/boxidr/insightidr-ca.pem"),
            ("log_search_enabled", "on"),
            ("region", "us"),
            ("log_search_base_url", &format!("https://{IDR_GUEST}")),
            ("log_search_token", &token),
        ],
    )
    .await
    .context("saving the InsightIDR form")?;
    say("ok: Box connected (client credentials) and the InsightIDR settings form saved");
    // The service removes its code file at its next tick after the claim, then the path unit
    // starts the root helper that removes the copy: asynchronous, so poll (up to 120 s).
    let saved = agent
        .run("start=$(date +%s); for i in $(seq 240); do [ -e /boot/firmware/BOXIDR-SETUP.TXT ] || break; sleep 0.5; done; echo CODE_FILE_GONE_AFTER=$(( $(date +%s) - start )); cat /var/lib/boxidr/boxidr.toml; ls /boot/firmware | sed 's/^/BOOT /'; ls /var/lib/boxidr | sed 's/^/STATE /'", 180)
        .await?;
    print_block("after the claim and the forms", &saved);
    ensure!(
        saved.contains(IDR_GUEST) && !saved.contains(&token),
        "the saved settings file lacks the Collector host or holds the token:\n{saved}"
    );
    ensure!(
        !saved.lines().any(|l| l == "BOOT BOXIDR-SETUP.TXT"),
        "BOXIDR-SETUP.TXT is still on the boot partition after the claim"
    );
    ensure!(
        !saved.lines().any(|l| l == "STATE setup-code.txt"),
        "the service kept its setup code file after the claim"
    );
    let gone_after = saved
        .lines()
        .find_map(|l| l.strip_prefix("CODE_FILE_GONE_AFTER="))
        .unwrap_or("?")
        .trim()
        .to_owned();
    say(format!(
        "ok: settings written to /var/lib/boxidr/boxidr.toml (no secret in it); BOXIDR-SETUP.TXT removed from the boot partition {gone_after} s after the forms were saved"
    ));

    // Events flow: some reach both sinks.
    let t = Instant::now();
    let flowing = idr
        .wait_for(Duration::from_secs(600), |s| {
            let t = s.totals();
            t.logsearch.distinct >= 20 && t.uef.distinct >= 1
        })
        .await;
    let totals = idr.totals();
    ensure!(flowing, "events did not reach idr-sim: {totals:?}");
    say(format!(
        "ok: events delivered after {} s: Log Search {} distinct, Collector {} distinct",
        t.elapsed().as_secs(),
        totals.logsearch.distinct,
        totals.uef.distinct
    ));

    check_leds(&agent).await?;
    check_watchdog(&agent).await?;
    let security = agent
        .run("systemd-analyze security --no-pager boxidr.service", 300)
        .await?;
    print_block("systemd-analyze security boxidr.service", &security);
    let score = security
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .context("no exposure level")?
        .to_owned();
    say(format!("ok: {}", score.trim()));

    // ---- Boot 2: a power cycle keeps the claim and the saved settings.
    agent.send_only("systemctl poweroff").await;
    guest.wait_exit(Duration::from_secs(300)).await?;
    say("guest powered off; booting again");
    if let Some(deb) = &cli.upgrade_deb {
        // The appliance's upgrade path: the package on the card's FAT partition, installed at
        // the next boot by boxidr-upgrade.service.
        let name = deb
            .file_name()
            .context("package file name")?
            .to_string_lossy()
            .into_owned();
        ensure!(
            name.starts_with("boxidr_") && name.ends_with("_arm64.deb"),
            "not a boxidr package: {name}"
        );
        let fat = format!("{}@@{boot_off}", disk.display());
        sh(
            "mcopy",
            &[
                "-o",
                "-i",
                &fat,
                &deb.to_string_lossy(),
                &format!("::/{name}"),
            ],
        )?;
        say(format!(
            "{name} copied onto the boot partition for the upgrade"
        ));
    }
    let mut guest = vm.boot(&work.join("console-2.log"))?;
    let again = agent.run("systemctl is-system-running --wait; systemctl show -p ActiveState,NRestarts boxidr.service; ls /boot/firmware; hostname", 900).await?;
    print_block("second boot", &again);
    ensure!(
        again.contains("ActiveState=active"),
        "boxidr is not active after the reboot"
    );
    ensure!(
        !again.contains("BOXIDR-SETUP.TXT"),
        "a setup code file came back after the reboot"
    );
    ensure!(
        again.contains(&hostname),
        "the host name changed across the reboot"
    );
    page.wait_up(Duration::from_secs(300)).await?;
    ensure!(
        page.get("/claim").await?.0 != 200
            || !page.get("/claim").await?.1.contains("name=\"code\""),
        "the appliance asks to be claimed again after the reboot"
    );
    let login = Page::new(https_port, &fingerprint)?;
    login.login().await?;
    let (_, form) = login.get("/insightidr").await?;
    ensure!(
        form.contains(IDR_GUEST) && form.contains(&format!("https://{IDR_GUEST}")),
        "the saved InsightIDR settings are gone after the reboot"
    );
    say(
        "ok: after the reboot: still claimed, password login works, the saved settings form kept its values",
    );

    if cli.upgrade_deb.is_some() {
        upgrade(&agent, https_port, &fingerprint, &version).await?;
    }

    // Nothing lost across restarts and the reboot: every event Box produced reaches Log Search.
    box_sim.pause_generation(true);
    let ids = box_sim.generated_ids();
    let all = {
        let ids = ids.clone();
        idr.wait_for(Duration::from_secs(900), move |s| {
            s.arrivals_of(idr_sim::Surface::Logsearch, &ids)
                .iter()
                .all(Option::is_some)
        })
        .await
    };
    let missing = idr
        .arrivals_of(idr_sim::Surface::Logsearch, &ids)
        .iter()
        .filter(|a| a.is_none())
        .count();
    let totals = idr.totals();
    ensure!(
        all,
        "{missing} of {} Box events never reached Log Search",
        ids.len()
    );
    say(format!(
        "ok: nothing lost: all {} Box events reached Log Search ({} deliveries, {} duplicates); Collector {} distinct",
        ids.len(),
        totals.logsearch.deliveries,
        totals.logsearch.deliveries - totals.logsearch.distinct,
        totals.uef.distinct
    ));
    agent.send_only("systemctl poweroff").await;
    guest.wait_exit(Duration::from_secs(300)).await?;

    // ---- Boot 3: the database now claims a newer schema than the binary knows (as after a
    // downgrade): the service refuses with exit 78 and is not restarted.
    if cli.upgrade_deb.is_some() {
        newer_schema(&disk, &work)?;
        let mut guest = vm.boot(&work.join("console-3.log"))?;
        let out = agent
            .run("systemctl is-system-running --wait; sleep 20; systemctl show -p ActiveState,Result,ExecMainStatus,NRestarts boxidr.service; journalctl -u boxidr.service --no-pager -o cat | grep -E 'Refusing to start|newer than' | tail -n 3", 900)
            .await
            .or_else(|e| if e.to_string().contains("exited") { Ok(e.to_string()) } else { Err(e) })?;
        print_block("third boot: database schema newer than the binary", &out);
        ensure!(
            out.contains("ExecMainStatus=78"),
            "the service did not exit 78"
        );
        ensure!(
            out.contains("NRestarts=0"),
            "the service was restarted after exit 78"
        );
        ensure!(
            out.contains("Refusing to start"),
            "the journal does not say why"
        );
        say(
            "ok: a database newer than the binary: exit 78, no restart (NRestarts=0), the journal says why",
        );
        agent.send_only("systemctl poweroff").await;
        guest.wait_exit(Duration::from_secs(300)).await?;
    }
    Ok(())
}

fn root_offset_of(disk: &Path) -> anyhow::Result<u64> {
    Ok(partition(disk, 2)?.0)
}

/// Runs debugfs commands (read-write) on the disk's root file system; fails on any error.
fn debugfs(disk: &Path, root_offset: u64, script: &str) -> anyhow::Result<String> {
    let cmds = disk.with_extension("debugfs");
    std::fs::write(&cmds, script)?;
    let target = format!("{}?offset={root_offset}", disk.display());
    let out = Command::new("debugfs")
        .args(["-w", "-f"])
        .arg(&cmds)
        .arg(&target)
        .output()
        .context("debugfs")?;
    let log = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "debugfs: {log}");
    // debugfs reports failures of single commands on stderr but exits 0.
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .filter(|l| !l.contains("Ext2 directory already exists"))
        .collect();
    ensure!(bad.is_empty(), "debugfs: {}", bad.join("; "));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The second boot's upgrade: boxidr-upgrade.service installed the package found on the boot
/// partition over the running appliance; the claim (password) and the secrets are kept (the
/// queue is checked by the final delivery count).
async fn upgrade(
    agent: &Agent,
    https_port: u16,
    fingerprint: &str,
    before: &str,
) -> anyhow::Result<()> {
    let out = agent
        .run("systemctl show -p Result boxidr-upgrade.service; journalctl -u boxidr-upgrade.service --no-pager -o cat | grep boxidr-upgrade; echo VERSION=$(dpkg-query -W -f '${Version}' boxidr); ls /boot/firmware | grep -c '^boxidr_' || true; systemctl show -p ActiveState,NRestarts boxidr.service", 600)
        .await?;
    print_block("upgrade from the boot partition", &out);
    let after = out
        .lines()
        .find_map(|l| l.strip_prefix("VERSION="))
        .context("no package version")?
        .trim()
        .to_owned();
    ensure!(
        after != before,
        "the package version did not change ({before})"
    );
    ensure!(
        out.contains("Result=success"),
        "boxidr-upgrade.service failed"
    );
    ensure!(
        out.lines().any(|l| l.trim() == "0"),
        "the package is still on the boot partition"
    );
    ensure!(
        out.contains("ActiveState=active"),
        "boxidr is not active after the upgrade"
    );
    let page = Page::new(https_port, fingerprint)?;
    page.wait_up(Duration::from_secs(300)).await?;
    page.login()
        .await
        .context("the admin password after the upgrade")?;
    say(format!(
        "ok: upgrade {before} -> {after} from the boot partition: package installed and removed from the card, service running the new package, still claimed (password login works)"
    ));
    Ok(())
}

/// Marks the guest's database as written by a newer boxidr: its schema version + 1, written
/// with redb on the host (the file format is the same on every architecture).
fn newer_schema(disk: &Path, work: &Path) -> anyhow::Result<()> {
    const DB: &str = "/var/lib/boxidr/boxidr.redb";
    let root = root_offset_of(disk)?;
    let copy = work.join("boxidr.redb");
    let _ = std::fs::remove_file(&copy);
    let stat = debugfs(
        disk,
        root,
        &format!("dump {DB} {}\nstat {DB}\n", copy.display()),
    )?;
    let field = |name: &str| -> anyhow::Result<String> {
        stat.split(name)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_owned)
            .with_context(|| format!("{name} of {DB}"))
    };
    let (uid, gid) = (field("User:")?, field("Group:")?);
    use redb::ReadableTable as _;
    let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let db = redb::Database::open(&copy).context("opening the guest's database")?;
    let tx = db.begin_write()?;
    let version = {
        let mut table = tx.open_table(meta)?;
        let current = table
            .get("schema_version")?
            .map(|v| v.value())
            .context("no schema_version in the database")?;
        table.insert("schema_version", current + 1)?;
        current + 1
    };
    tx.commit()?;
    drop(db);
    debugfs(
        disk,
        root,
        &format!(
            "rm {DB}\nwrite {} {DB}\nsif {DB} uid {uid}\nsif {DB} gid {gid}\nsif {DB} mode 0100600\n",
            copy.display()
        ),
    )?;
    say(format!(
        "database schema version set to {version} (newer than the binary's)"
    ));
    Ok(())
}

/// idr-sim's server certificate for the guest-side address (10.0.2.101), and its CA's PEM.
fn tls_for_guest() -> anyhow::Result<(idr_sim::TlsMaterial, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "boxidr boot test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names.push(SanType::IpAddress(
        IDR_GUEST.parse::<std::net::Ipv4Addr>()?.into(),
    ));
    params
        .distinguished_name
        .push(DnType::CommonName, IDR_GUEST);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("key: {e}"))?;
    let material = idr_sim::TlsMaterial {
        cert_chain: vec![cert.der().clone(), ca.der().clone()],
        key: Arc::new(key_der),
        ca_pem: ca.pem(),
    };
    Ok((material, ca.pem()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn guestfwd(self_exe: &Path, guest: &str, host: SocketAddr) -> String {
    // QEMU option values escape a comma by doubling it.
    let exe = self_exe.to_string_lossy().replace(',', ",,");
    format!("guestfwd=tcp:{guest}-cmd:{exe} relay {host}")
}

/// Copies the kernel and initramfs out of the image's boot partition (the ones a Pi boots).
fn extract_boot_files(disk: &Path, offset: u64, work: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let fat = format!("{}@@{offset}", disk.display());
    let listing = sh("mdir", &["-b", "-i", &fat, "::/"])?;
    let find = |prefix: &str| {
        listing
            .lines()
            .map(|l| l.trim().trim_start_matches("::/").to_owned())
            .filter(|n| n.starts_with(prefix))
            .max()
    };
    let kernel = find("vmlinuz-").context("no vmlinuz-* on the boot partition")?;
    let initrd = find("initrd.img-").context("no initrd.img-* on the boot partition")?;
    let mut out = Vec::new();
    for name in [&kernel, &initrd] {
        let dest = work.join(name);
        let _ = std::fs::remove_file(&dest);
        sh(
            "mcopy",
            &[
                "-n",
                "-i",
                &fat,
                &format!("::/{name}"),
                &dest.to_string_lossy(),
            ],
        )?;
        out.push(dest);
    }
    let initrd = out.pop().context("initrd")?;
    let kernel = out.pop().context("kernel")?;
    Ok((kernel, initrd))
}

/// Writes the test-only files into the copy's root file system with debugfs (no mount): the
/// agent and its unit (enabled), the CA of idr-sim, and a provisioning file pointing at the
/// simulators' guest-side addresses with the LEDs on PL061 lines.
fn inject(disk: &Path, root_offset: u64, work: &Path, ca_pem: &str) -> anyhow::Result<()> {
    let dir = work.join("inject");
    std::fs::create_dir_all(&dir)?;
    let config = format!(
        r#"# TEST ONLY (boxidr-boot-test): the appliance pointed at the simulators on the host.
[box]
authorize_url = "http://{BOX_GUEST}/api/oauth2/authorize"
token_base = "http://{BOX_GUEST}"
api_base = "http://{BOX_GUEST}/2.0"

[events]
poll_interval_secs = 1
completeness_lag_secs = 5

[setup]
code_file = "/var/lib/boxidr/setup-code.txt"

[clock]
# timesyncd cannot reach any NTP server from the restricted guest network.
wait_for_sync = false

[insightidr.log_search]
# The Log Search CA is a file-level setting (not on the form, which keeps it): idr-sim's CA.
# The test's form sets the region and the base URL (so the reboot check sees the form's values).
region = "eu"
ca_file = "/etc/boxidr/insightidr-ca.pem"

[board]
backend = "cdev"
chip = "{PL061_LABEL}"
leds = [{}, {}, {}, {}]
button = "none"
led_active_low = false
"#,
        LED_LINES[0], LED_LINES[1], LED_LINES[2], LED_LINES[3]
    );
    let files: [(&str, &str, u32); 4] = [
        ("boxidr.toml", config.as_str(), 0o644),
        ("insightidr-ca.pem", ca_pem, 0o644),
        ("boxidr-test-agent", AGENT, 0o755),
        ("boxidr-test-agent.service", AGENT_UNIT, 0o644),
    ];
    for (name, text, mode) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    let d = dir.display();
    let script = format!(
        "rm /etc/boxidr/boxidr.toml\n\
         write {d}/boxidr.toml /etc/boxidr/boxidr.toml\n\
         write {d}/insightidr-ca.pem /etc/boxidr/insightidr-ca.pem\n\
         mkdir /usr/local/sbin\n\
         write {d}/boxidr-test-agent /usr/local/sbin/boxidr-test-agent\n\
         write {d}/boxidr-test-agent.service /etc/systemd/system/boxidr-test-agent.service\n\
         symlink /etc/systemd/system/multi-user.target.wants/boxidr-test-agent.service /etc/systemd/system/boxidr-test-agent.service\n"
    );
    debugfs(disk, root_offset, &script)?;
    let target = format!("{}?offset={root_offset}", disk.display());
    let check = sh("debugfs", &["-R", "cat /etc/boxidr/boxidr.toml", &target])?;
    ensure!(
        check.contains("TEST ONLY"),
        "the test provisioning file was not written"
    );
    Ok(())
}

fn print_block(title: &str, text: &str) {
    println!("---- {title}");
    for line in text.lines() {
        println!("  | {line}");
    }
}

/// The nice value of a running process (field 19 of /proc/PID/stat).
fn niceness(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(16)?
        .parse()
        .ok()
}

/// How QEMU is started (the same for every boot of one test).
#[derive(Debug)]
struct Vm {
    kernel: PathBuf,
    initrd: PathBuf,
    disk: PathBuf,
    netdev: String,
}

impl Vm {
    fn boot(&self, console: &Path) -> anyhow::Result<Guest> {
        let _ = std::fs::remove_file(console);
        std::fs::write(console, b"")?;
        // QEMU runs at a higher priority than the compiles sharing the machine (`nice -n -10`,
        // root only; without the right it runs at the normal priority): a starved TCG guest
        // misses its own timeouts (udev, device units, the watchdog) for reasons no Pi has.
        // (GNU nice runs the program at the normal priority, with a warning, when it may not.)
        let mut cmd = Command::new("nice");
        cmd.args(["-n", "-10", "qemu-system-aarch64"]);
        let child = cmd
            .args([
                "-M",
                "virt",
                "-cpu",
                "cortex-a72",
                "-smp",
                "2",
                "-m",
                "1024",
            ])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args([
                "-append",
                // TCG on a shared machine is 10-20x slower than a Pi: udev may need minutes
                // for the devices systemd waits for (90 s by default).
                "root=LABEL=RASPIROOT rw rootwait console=ttyAMA0 panic=-1 systemd.default_device_timeout_sec=900",
            ])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", self.disk.display()))
            .args(["-netdev", &self.netdev])
            // No option ROM: the guest boots its kernel directly (and ipxe's ROM files are not needed).
            .args(["-device", "virtio-net-pci,netdev=n,romfile="])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .stdin(Stdio::null())
            .spawn()
            .context("starting qemu-system-aarch64")?;
        // nice execs QEMU in the same process: wait for the exec to read QEMU's own value.
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && !std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|p| p.to_string_lossy().contains("qemu"))
                .unwrap_or(false)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        say(format!(
            "qemu started (pid {pid}, nice {}); console in {}",
            niceness(pid).map_or_else(|| "?".to_owned(), |n| n.to_string()),
            console.display()
        ));
        Ok(Guest {
            child,
            console: console.to_owned(),
        })
    }
}

#[derive(Debug)]
struct Guest {
    child: std::process::Child,
    console: PathBuf,
}

impl Drop for Guest {
    /// A failed check must not leave QEMU running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The console without ANSI colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

impl Guest {
    fn read_console(&self) -> String {
        plain(&String::from_utf8_lossy(
            &std::fs::read(&self.console).unwrap_or_default(),
        ))
    }

    async fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "qemu exited ({status}); console in {}",
                self.console.display()
            );
        }
        Ok(())
    }

    /// The token after `key` on the first console line holding `anchor` and `key`.
    async fn console_value_after(
        &mut self,
        anchor: &str,
        key: &str,
        limit: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.read_console();
            if let Some(v) = text
                .lines()
                .filter(|l| l.contains(anchor))
                .find_map(|l| value_after(l, key))
            {
                return Ok(v);
            }
            self.check_alive().await?;
            ensure!(Instant::now() < deadline, "{anchor:?} not on the console");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn console_value(&mut self, key: &str, limit: Duration) -> anyhow::Result<String> {
        self.console_value_after(key, key, limit).await
    }

    async fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the guest did not power off within {} s", limit.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
}

/// `key` followed by a value: quoted or up to the next space.
fn value_after(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(key)? + key.len()..];
    let rest = rest.trim_start_matches('"');
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The test-only agent in the guest: each of its connections carries one command.
#[derive(Debug)]
struct Agent {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Agent {
    async fn bind() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    /// Runs `cmd` as root in the guest; its output (stdout and stderr). Fails on a non-zero exit.
    async fn run(&self, cmd: &str, limit_secs: u64) -> anyhow::Result<String> {
        let (rc, out) = self.run_rc(cmd, limit_secs).await?;
        ensure!(rc == 0, "guest command {cmd:?} exited {rc}:\n{out}");
        Ok(out)
    }

    async fn run_rc(&self, cmd: &str, limit_secs: u64) -> anyhow::Result<(i32, String)> {
        let attempt = async {
            loop {
                let (mut conn, _) = self.listener.accept().await?;
                if conn.write_all(format!("{cmd}\n").as_bytes()).await.is_err() {
                    continue;
                }
                let mut raw = Vec::new();
                if conn.read_to_end(&mut raw).await.is_err() {
                    continue;
                }
                let text = String::from_utf8_lossy(&raw).into_owned();
                let Some(at) = text.rfind("__END__ ") else {
                    continue;
                };
                let rc = text[at + 8..].trim().parse().unwrap_or(-1);
                return anyhow::Ok((rc, text[..at].trim_end().to_owned()));
            }
        };
        tokio::time::timeout(Duration::from_secs(limit_secs), attempt)
            .await
            .with_context(|| format!("guest command {cmd:?}: no answer within {limit_secs} s"))?
    }

    /// Sends a command whose connection may never answer (poweroff).
    async fn send_only(&self, cmd: &str) {
        if let Ok(Ok((mut conn, _))) =
            tokio::time::timeout(Duration::from_secs(120), self.listener.accept()).await
        {
            let _ = conn.write_all(format!("{cmd}\n").as_bytes()).await;
        }
    }
}

async fn check_unit_and_files(agent: &Agent) -> anyhow::Result<()> {
    let show = agent
        .run("systemctl show -p ActiveState,SubState,WatchdogUSec,MainPID,User,NRestarts boxidr.service; pid=$(systemctl show -p MainPID --value boxidr.service); echo ProcessUser=$(stat -c %U /proc/$pid); find /var/lib/boxidr -printf 'FILE %m %u:%g %y %p\\n'", 120)
        .await?;
    print_block("boxidr.service", &show);
    ensure!(
        show.contains("ActiveState=active"),
        "boxidr.service is not active"
    );
    ensure!(
        show.contains("WatchdogUSec=30s"),
        "the watchdog is not armed (WatchdogUSec)"
    );
    ensure!(
        show.contains("ProcessUser=boxidr"),
        "the service does not run as boxidr"
    );
    let mut files = 0;
    for line in show.lines().filter(|l| l.starts_with("FILE ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, kind) = (f[1], f[2], f[3]);
        ensure!(owner == "boxidr:boxidr", "not owned by boxidr: {line}");
        match kind {
            "d" => ensure!(mode == "700", "directory not 0700: {line}"),
            "f" => ensure!(mode == "600", "file not 0600: {line}"),
            _ => {}
        }
        files += 1;
    }
    ensure!(files >= 3, "the state directory is nearly empty");
    say(format!(
        "ok: boxidr.service active under systemd, WatchdogUSec=30s, runs as boxidr, {files} entries of /var/lib/boxidr all boxidr-owned, files 0600, directories 0700"
    ));
    Ok(())
}

async fn check_no_credentials(agent: &Agent) -> anyhow::Result<()> {
    let out = agent
        .run("awk -F: '{print \"ACCOUNT\", $1, ($2 ~ /^[!*]/ && $2 !~ /\\$/) ? \"locked\" : \"HAS-PASSWORD\"}' /etc/shadow; ss -Hltnup; echo KEYS; grep -rlE -- '-----BEGIN ([A-Z]+ )?PRIVATE KEY-----' /etc /root /usr/local /boot /home /var/lib 2>/dev/null | grep -v '^/var/lib/boxidr/' || true; test -e /usr/sbin/sshd && echo SSHD-INSTALLED; true", 120)
        .await?;
    print_block("accounts, listening sockets, key material", &out);
    ensure!(!out.contains("HAS-PASSWORD"), "an account has a password");
    let keys: Vec<&str> = out
        .split("KEYS")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter(|l| l.starts_with('/') && !l.contains("No such file"))
        .collect();
    ensure!(keys.is_empty(), "private keys in the image: {keys:?}");
    let listening: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("tcp") || l.starts_with("udp"))
        .collect();
    ensure!(
        !listening.iter().any(|l| l.contains(":22 ")),
        "something listens on port 22"
    );
    ensure!(!out.contains("SSHD-INSTALLED"), "an sshd is installed");
    // Reachable from the network (not loopback): TCP only the setup page (boxidr on 443); UDP
    // only mDNS (avahi) and the DHCP client (systemd-networkd).
    for line in &listening {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (proto, local, process) = (
            f[0],
            f.get(4).copied().unwrap_or(""),
            f.get(6).copied().unwrap_or(""),
        );
        if local.starts_with("127.") || local.starts_with("[::1]") || local.contains("%lo:") {
            continue;
        }
        let allowed = if proto == "tcp" {
            local.ends_with(":443") && process.contains("\"boxidr\"")
        } else {
            process.contains("\"avahi-daemon\"") || process.contains("\"systemd-network\"")
        };
        ensure!(
            allowed,
            "an unexpected socket is reachable from the network: {line}"
        );
    }
    say(format!(
        "ok: every account locked, no private key outside the service's store, no ssh server; reachable from the network: TCP only boxidr on 443, UDP only avahi (mDNS) and networkd (DHCP); listening: {}",
        listening
            .iter()
            .filter(|l| l.starts_with("tcp"))
            .filter_map(|l| l.split_whitespace().nth(4))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(())
}

async fn check_grown(agent: &Agent, root_size: u64) -> anyhow::Result<()> {
    let out = agent
        .run("systemctl show -p Result --value boxidr-growfs.service; cat /sys/class/block/vda2/size; df -B1 --output=size / | tail -n1", 60)
        .await?;
    let nums: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    ensure!(nums.len() == 2, "growfs output: {out}");
    let (part, fs) = (nums[0] * 512, nums[1]);
    ensure!(
        part >= root_size + (1 << 30) - (4 << 20) && fs > root_size + (900 << 20),
        "the root file system did not grow to the disk: partition {part}, file system {fs}, image root {root_size}"
    );
    say(format!(
        "ok: first boot grew the root partition from {} MiB to {} MiB (file system {} MiB)",
        root_size >> 20,
        part >> 20,
        fs >> 20
    ));
    Ok(())
}

async fn check_nothing_leaves(agent: &Agent) -> anyhow::Result<()> {
    let (rc, out) = agent
        .run_rc("timeout 5 bash -c 'exec 3<>/dev/tcp/1.1.1.1/443' && echo REACHED; timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/22' && echo REACHED; timedatectl show -p NTPSynchronized", 60)
        .await?;
    ensure!(
        !out.contains("REACHED"),
        "the guest reached an outside address:\n{out}"
    );
    ensure!(
        out.contains("NTPSynchronized=no"),
        "NTP synchronised from the restricted guest?\n{out}"
    );
    say(format!(
        "ok: nothing leaves the guest (1.1.1.1:443 and the host's 10.0.2.2:22 unreachable, NTP unsynchronised; rc {rc})"
    ));
    Ok(())
}

/// Samples the PL061 lines from the kernel's own view (/sys/kernel/debug/gpio; the service
/// holds the lines, so libgpiod cannot read them) and checks the LED patterns: SYSTEM beats,
/// BOX and INSIGHTIDR are on (events flowing and delivered), ATTENTION is off.
async fn check_leds(agent: &Agent) -> anyhow::Result<()> {
    let cmd = "mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug; cat /sys/kernel/debug/gpio; for i in $(seq 40); do echo SAMPLE; grep -A8 '9030000.pl061' /sys/kernel/debug/gpio | grep -E '^ *gpio-[0-9]+ '; sleep 0.1; done";
    let out = agent.run(cmd, 120).await?;
    let header = out
        .lines()
        .find(|l| l.contains(PL061_LABEL) && l.contains("GPIOs"))
        .context("no PL061 chip in /sys/kernel/debug/gpio")?;
    print_block(
        "/sys/kernel/debug/gpio (first read)",
        out.split("SAMPLE").next().unwrap_or(""),
    );
    let base: u32 = header
        .split("GPIOs ")
        .nth(1)
        .and_then(|s| s.split('-').next())
        .and_then(|s| s.trim().parse().ok())
        .context("PL061 base")?;
    let mut seen = [[false; 2]; 4];
    let mut samples = 0;
    for sample in out.split("SAMPLE").skip(1) {
        samples += 1;
        for line in sample.lines() {
            let Some(rest) = line.trim().strip_prefix("gpio-") else {
                continue;
            };
            let Some(n) = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(i) = LED_LINES.iter().position(|&l| l + base == n) else {
                continue;
            };
            ensure!(
                line.contains("boxidr"),
                "line {} is not held by boxidr: {line}",
                n - base
            );
            if line.contains(" out hi") {
                seen[i][1] = true;
            } else if line.contains(" out lo") {
                seen[i][0] = true;
            }
        }
    }
    let names = ["SYSTEM", "BOX", "INSIGHTIDR", "ATTENTION"];
    let describe = |s: [bool; 2]| match s {
        [true, true] => "blinking",
        [false, true] => "on",
        [true, false] => "off",
        [false, false] => "not seen",
    };
    let summary = names
        .iter()
        .zip(seen)
        .map(|(n, s)| format!("{n} {}", describe(s)))
        .collect::<Vec<_>>()
        .join(", ");
    ensure!(seen[0] == [true, true], "SYSTEM does not beat: {summary}");
    ensure!(
        seen[1] == [false, true],
        "BOX is not steadily on: {summary}"
    );
    ensure!(
        seen[2] == [false, true],
        "INSIGHTIDR is not steadily on: {summary}"
    );
    ensure!(seen[3] == [true, false], "ATTENTION is not off: {summary}");
    say(format!(
        "ok: PL061 lines {LED_LINES:?} (held by boxidr, {samples} samples over ~5 s): {summary}"
    ));
    Ok(())
}

async fn check_watchdog(agent: &Agent) -> anyhow::Result<()> {
    let cmd = "pid=$(systemctl show -p MainPID --value boxidr.service); before=$(systemctl show -p NRestarts --value boxidr.service); kill -STOP $pid; start=$(date +%s.%N); while :; do now=$(systemctl show -p MainPID --value boxidr.service); st=$(systemctl show -p ActiveState --value boxidr.service); if [ \"$now\" != 0 ] && [ \"$now\" != \"$pid\" ] && [ \"$st\" = active ]; then break; fi; sleep 0.5; done; end=$(date +%s.%N); echo OLD=$pid NEW=$now RESTARTS_BEFORE=$before RESTARTS_AFTER=$(systemctl show -p NRestarts --value boxidr.service); awk -v a=$start -v b=$end 'BEGIN{printf \"SECONDS=%.1f\\n\", b-a}'; journalctl -u boxidr.service --no-pager -n 400 -o cat | grep -iE 'watchdog|SIGABRT|Scheduled restart' | tail -n 5";
    let out = agent.run(cmd, 240).await?;
    print_block("SIGSTOP of boxidr", &out);
    let secs: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("SECONDS="))
        .and_then(|s| s.parse().ok())
        .context("no restart time")?;
    ensure!(
        out.to_lowercase().contains("watchdog"),
        "the journal does not name the watchdog"
    );
    // WatchdogSec=30s + RestartSec=2s, plus the new process's start-up under TCG.
    ensure!(
        secs <= 32.0 + 60.0,
        "the frozen service came back only after {secs} s"
    );
    say(format!(
        "ok: frozen (SIGSTOP) service killed by the systemd watchdog and running again after {secs:.1} s (WatchdogSec=30s + RestartSec=2s + start-up)"
    ));
    Ok(())
}

/// A browser for the setup page through QEMU's forwarded port, trusting exactly the
/// certificate whose SHA-256 fingerprint the console printed.
#[derive(Debug)]
struct Page {
    client: reqwest::Client,
    base: String,
    jar: std::sync::Mutex<Vec<(String, String)>>,
}

impl Page {
    fn new(port: u16, fingerprint: &str) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprint: fingerprint.to_owned(),
                provider,
            }))
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Self {
            client,
            base: format!("https://127.0.0.1:{port}"),
            jar: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn cookies(&self) -> String {
        self.jar
            .lock()
            .map(|j| {
                j.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn absorb(&self, resp: &reqwest::Response) {
        let Ok(mut jar) = self.jar.lock() else { return };
        for value in resp.headers().get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let Some((name, value)) = text.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            jar.retain(|(k, _)| k != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                jar.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        self.absorb(&resp);
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// Posts the form at `path` with its CSRF token; expects a redirect (saved).
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<()> {
        self.post_from(path, path, fields).await
    }

    /// Posts to `action` a form of the page at `page` (its CSRF token); expects a redirect.
    async fn post_from(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let (status, body) = self.submit(page, action, fields).await?;
        ensure!(
            status == 303,
            "POST {action}: {status}\n{}",
            errors_of(&body)
        );
        Ok(())
    }

    /// GETs `page` for its CSRF token and POSTs `fields` to `action`: the status and body.
    async fn submit(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<(u16, String)> {
        let (status, body) = self.get(page).await?;
        ensure!(status == 200, "GET {page}: {status}");
        let csrf = csrf(&body).with_context(|| format!("no CSRF token on {page}"))?;
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let resp = self
            .client
            .post(format!("{}{action}", self.base))
            .header("cookie", self.cookies())
            .header("origin", &self.base)
            .form(&form)
            .send()
            .await
            .with_context(|| format!("POST {action}"))?;
        self.absorb(&resp);
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    async fn claim(&self, code: &str) -> anyhow::Result<()> {
        self.post(
            "/claim",
            &[
                ("code", code),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await
    }

    async fn login(&self) -> anyhow::Result<()> {
        self.post("/login", &[("password", PASSWORD)]).await
    }

    async fn wait_up(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.get("/login").await.is_ok() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the setup page did not come back"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

fn csrf(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\"")?;
    let tag_start = body[..at].rfind('<')?;
    let tag_end = at + body[at..].find('>')?;
    value_after(&body[tag_start..tag_end], "value=\"").or_else(|| {
        let tag = &body[tag_start..tag_end];
        let v = tag.split("value=\"").nth(1)?.split('"').next()?;
        Some(v.to_owned())
    })
}

/// The text of a page's banners (notices and errors) and field errors, for the failure report.
fn banners_of(body: &str) -> String {
    let mut parts: Vec<String> = body
        .split("class=\"banner")
        .skip(1)
        .filter_map(|s| Some(s.split('>').nth(1)?.split('<').next()?.to_owned()))
        .collect();
    let fields = errors_of(body);
    if !fields.is_empty() {
        parts.push(fields);
    }
    parts.join("; ")
}

/// The error messages of a rejected form, for the failure report.
fn errors_of(body: &str) -> String {
    body.split("class=\"error\"")
        .skip(1)
        .filter_map(|s| s.split('>').nth(1)?.split('<').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Accepts exactly the certificate with the console's fingerprint (the appliance's own,
/// self-signed); handshake signatures are still verified.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        let seen = digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        if seen == self.fingerprint {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {seen} is not the console's {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
