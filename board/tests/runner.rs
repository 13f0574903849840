//! The LED thread on the simulated board: frames, button events, defined end states, start-up
//! fallbacks and the lamp test.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use boxidr_board::backend::BackendKind;
use boxidr_board::start::BoardProblem;
use boxidr_board::{
    BackendChoice, BoardConfig, ButtonConfig, ButtonEvent, Clock, LedPlayer, ManualClock,
    MonotonicClock, RunnerConfig, SimBoard, Stopped, SystemPaths, lamp_test_steps, run_lamp_test,
    runner, start,
};
use boxidr_model::{Led, LedFrame, LedLook};

/// Polls `cond` for up to two seconds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn quick_button() -> ButtonConfig {
    ButtonConfig {
        debounce: Duration::from_millis(20),
        short_press_max: Duration::from_millis(200),
        long_press: Duration::from_millis(600),
        summary_duration: Duration::from_millis(300),
        confirm_duration: Duration::from_millis(300),
        poll_interval: Duration::from_millis(5),
    }
}

fn spawn_sim(on_event: runner::ButtonCallback) -> (SimBoard, boxidr_board::LedHandle) {
    let sim = SimBoard::new();
    let cfg = RunnerConfig {
        button: quick_button(),
        ..RunnerConfig::default()
    };
    let handle = runner::spawn(
        sim.leds(),
        Some(sim.button()),
        MonotonicClock::new(),
        cfg,
        "simulated",
        on_event,
    )
    .expect("spawn");
    (sim, handle)
}

/// Boot sweep first, then the live frame; a clean stop leaves SYSTEM steady on, the rest dark.
#[test]
fn shows_frames_and_stops_in_the_stopped_state() {
    let (sim, handle) = spawn_sim(Box::new(|_| {}));
    assert_eq!(handle.status().frame, LedFrame::BOOT);
    let frame = LedFrame::ALL_OFF
        .with(Led::Box, LedLook::On)
        .with(Led::InsightIdr, LedLook::On);
    handle.show(frame);
    eventually("live frame", || sim.levels() == [false, true, true, false]);
    assert_eq!(handle.status().frame, frame);
    assert_eq!(
        handle.status().render(),
        "SYSTEM ○ off  BOX ● on  INSIGHTIDR ● on  ATTENTION ○ off"
    );
    assert_eq!(handle.stop(), Stopped::Clean);
    assert_eq!(sim.levels(), [true, false, false, false]);
}

/// A stop that says why (the firmware refusing to start) leaves that frame, not STOPPED.
#[test]
fn stop_showing_leaves_the_given_frame() {
    let (sim, handle) = spawn_sim(Box::new(|_| {}));
    handle.show(LedFrame::ALL_ON);
    eventually("all on", || sim.levels() == [true; 4]);
    assert_eq!(handle.stop_showing(LedFrame::REFUSED), Stopped::Clean);
    assert_eq!(sim.levels(), [false, false, false, true]);
}

/// Dropping the handle stops the thread the same way.
#[test]
fn dropping_the_handle_stops() {
    let (sim, handle) = spawn_sim(Box::new(|_| {}));
    handle.show(LedFrame::ALL_ON);
    eventually("all on", || sim.levels() == [true; 4]);
    drop(handle);
    assert_eq!(sim.levels(), [true, false, false, false]);
}

/// A panic on the LED thread (here in the button callback) leaves the FAULT frame.
#[test]
fn panic_leaves_the_fault_state() {
    let (sim, handle) = spawn_sim(Box::new(|_| panic!("callback failed")));
    handle.show(LedFrame::ALL_OFF);
    eventually("armed", || sim.levels() == [false; 4]);
    std::thread::sleep(Duration::from_millis(40));
    sim.set_button(true);
    std::thread::sleep(Duration::from_millis(60));
    sim.set_button(false);
    eventually("fault frame", || handle.status().stopped.is_some());
    assert_eq!(sim.levels(), [true, false, false, true]);
    assert_eq!(handle.status().frame, LedFrame::FAULT);
    assert_eq!(handle.stop(), Stopped::Panicked);
}

/// A short press reports `ShortPress` and shows the summary frame for its time; a long hold
/// shows the progress bar, then reports the factory-reset request and shows the confirmation.
#[test]
fn button_events_and_feedback() {
    let (tx, rx) = mpsc::channel();
    let (sim, handle) = spawn_sim(Box::new(move |e| tx.send(e).expect("receiver alive")));
    let live = LedFrame::ALL_OFF.with(Led::System, LedLook::Heartbeat);
    let summary = LedFrame::single(Led::Attention, LedLook::Code(2));
    handle.show(live);
    handle.set_summary(Some(summary));
    std::thread::sleep(Duration::from_millis(60));

    sim.set_button(true);
    std::thread::sleep(Duration::from_millis(80));
    sim.set_button(false);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(2)),
        Ok(ButtonEvent::ShortPress)
    );
    eventually("summary", || handle.status().frame == summary);
    eventually("summary ends", || handle.status().frame == live);

    sim.set_button(true);
    eventually("progress bar", || {
        handle.status().frame == LedFrame::reset_hold(1)
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(2)),
        Ok(ButtonEvent::FactoryResetRequested)
    );
    eventually("confirmation", || {
        handle.status().frame == LedFrame::FACTORY_RESET_CONFIRMED
    });
    sim.set_button(false);
    eventually("confirmation ends", || handle.status().frame == live);
    assert!(
        rx.try_recv().is_err(),
        "one request per hold, nothing on release"
    );
    handle.stop();
}

/// `start` with the simulated backend asked for: no problem reported, the sim is exposed.
#[test]
fn start_simulated() {
    let started = start(&BoardConfig::simulated(), Box::new(|_| {})).expect("start");
    assert_eq!(started.kind, BackendKind::Simulated);
    assert!(started.problem.is_none());
    let sim = started.sim.clone().expect("sim board");
    started.handle.show(LedFrame::ALL_ON);
    eventually("all on", || {
        sim.render() == "SYSTEM ● BOX ● INSIGHTIDR ● ATTENTION ●"
    });
}

fn paths(dir: &std::path::Path) -> SystemPaths {
    SystemPaths {
        dt_model: dir.join("model"),
        dt_compatible: dir.join("compatible"),
        dev_dir: dir.join("dev"),
        leds_class: dir.join("leds"),
    }
}

/// Not a Pi: the firmware keeps running on the simulated board and is told why.
#[test]
fn start_without_a_device_tree_falls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = BoardConfig {
        paths: paths(dir.path()),
        ..BoardConfig::default()
    };
    let started = start(&cfg, Box::new(|_| {})).expect("start");
    assert_eq!(started.kind, BackendKind::Simulated);
    assert!(
        matches!(started.problem, Some(BoardProblem::Detect(_))),
        "{:?}",
        started.problem
    );
    assert!(
        started
            .problem
            .expect("problem")
            .to_string()
            .contains("not a Raspberry Pi")
    );
}

/// A Pi 4 whose GPIO cannot be opened (no gpiochip here): simulated fallback, clear error.
#[test]
fn start_with_unopenable_gpio_falls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("dev")).expect("mkdir");
    std::fs::write(
        dir.path().join("compatible"),
        b"raspberrypi,4-model-b\0brcm,bcm2711\0",
    )
    .expect("write");
    let cfg = BoardConfig {
        backend: BackendChoice::Cdev,
        paths: paths(dir.path()),
        ..BoardConfig::default()
    };
    let started = start(&cfg, Box::new(|_| {})).expect("start");
    assert_eq!(started.kind, BackendKind::Simulated);
    assert_eq!(started.board, Some(boxidr_board::BoardModel::Pi4B));
    let problem = started.problem.expect("problem").to_string();
    if cfg!(feature = "cdev") {
        assert!(
            problem.contains("pinctrl-bcm2711") && problem.contains("not found"),
            "{problem}"
        );
    } else {
        assert!(problem.contains("feature `cdev`"), "{problem}");
    }
}

/// A board with no Pi pin map (QEMU's `virt`) runs when the configuration names the chip and
/// the lines: the map uses them (no button), and a chip that is not there is named in the
/// problem (here no gpiochip exists, so the fallback is the simulated board).
#[test]
fn configured_chip_and_lines_on_an_unknown_board() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("dev")).expect("mkdir");
    std::fs::write(dir.path().join("compatible"), b"linux,dummy-virt\0").expect("write");
    let cfg = BoardConfig {
        backend: BackendChoice::Cdev,
        pins: boxidr_board::PinOverrides {
            chip: Some("9030000.pl061".into()),
            leds: Some([0, 1, 2, 4]),
            button: Some(None),
            act_led: Some(None),
            ..boxidr_board::PinOverrides::default()
        },
        paths: paths(dir.path()),
        ..BoardConfig::default()
    };
    let started = start(&cfg, Box::new(|_| {})).expect("start");
    assert_eq!(started.board, None);
    assert_eq!(started.pins.leds, [0, 1, 2, 4]);
    assert_eq!(started.pins.button, None);
    assert_eq!(started.pins.chip, "9030000.pl061");
    let problem = started.problem.expect("problem").to_string();
    if cfg!(feature = "cdev") {
        assert!(
            problem.contains("9030000.pl061") && problem.contains("not found"),
            "{problem}"
        );
    }
    // Without the lines configured the same board is refused as unsupported.
    let bare = BoardConfig {
        backend: BackendChoice::Cdev,
        paths: paths(dir.path()),
        ..BoardConfig::default()
    };
    let problem = start(&bare, Box::new(|_| {}))
        .expect("start")
        .problem
        .expect("problem")
        .to_string();
    assert!(problem.contains("set the LED pins"), "{problem}");
}

/// The lamp test runs on the simulated board without real waiting and lights each LED alone,
/// in position order, before anything else.
#[test]
fn lamp_test_on_the_simulated_board() {
    let clock = ManualClock::new();
    let sim = SimBoard::with_clock(Arc::new(clock.clone()));
    let mut player = LedPlayer::new(sim.leds(), false);
    let steps = lamp_test_steps();
    let mut seen = Vec::new();
    let started = Instant::now();
    let advance = clock.clone();
    run_lamp_test(
        &mut player,
        &steps,
        &clock,
        &mut |d| advance.advance(d),
        &mut |s| seen.push(s.description.clone()),
    )
    .expect("sim pins cannot fail");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(seen.len(), steps.len());
    let total: Duration = steps.iter().map(|s| s.duration).sum();
    assert_eq!(clock.now(), total);
    let first_on: Vec<(Led, Duration)> = Led::ALL
        .into_iter()
        .map(|led| {
            (
                led,
                sim.transitions_of(led)
                    .into_iter()
                    .find(|(_, on)| *on)
                    .expect("lit")
                    .0,
            )
        })
        .collect();
    assert_eq!(
        first_on
            .iter()
            .map(|(_, t)| t.as_millis())
            .collect::<Vec<_>>(),
        vec![0, 1500, 3000, 4500]
    );
    assert_eq!(sim.levels(), [false; 4]);
}

/// `boxidr leds --test` on the simulated board: one line per step with the rendered LEDs, no
/// real waiting.
#[test]
fn leds_test_command_on_the_simulated_board() {
    let mut lines = Vec::new();
    let report = boxidr_board::leds_test(&BoardConfig::simulated(), false, &mut |l| {
        lines.push(l.to_owned())
    })
    .expect("simulated lamp test");
    assert_eq!(report.kind, BackendKind::Simulated);
    assert_eq!(lines.len(), report.steps);
    assert_eq!(
        lines[0],
        format!(
            "[1/{}] only SYSTEM (position 1) is lit  SYSTEM ● BOX ○ INSIGHTIDR ○ ATTENTION ○",
            report.steps
        )
    );
    assert!(
        lines[4].ends_with("SYSTEM ● BOX ● INSIGHTIDR ● ATTENTION ●"),
        "{}",
        lines[4]
    );
}

/// Without a device tree the lamp test refuses, with the reason, instead of pretending.
#[test]
fn leds_test_needs_hardware_unless_simulated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = BoardConfig {
        paths: paths(dir.path()),
        ..BoardConfig::default()
    };
    let err = boxidr_board::leds_test(&cfg, false, &mut |_| {}).expect_err("no hardware here");
    assert!(err.to_string().contains("not a Raspberry Pi"), "{err}");
}

/// A firmware that stops refreshing the frame loses the SYSTEM heartbeat (steady on).
#[test]
fn hung_firmware_stops_the_heartbeat() {
    let sim = SimBoard::new();
    let cfg = RunnerConfig {
        liveness_timeout: Some(Duration::from_millis(150)),
        ..RunnerConfig::default()
    };
    let handle = runner::spawn(
        sim.leds(),
        None::<boxidr_board::sim::SimButton>,
        MonotonicClock::new(),
        cfg,
        "simulated",
        Box::new(|_| {}),
    )
    .expect("spawn");
    let live = LedFrame::ALL_OFF.with(Led::System, LedLook::Heartbeat);
    handle.show(live);
    assert_eq!(handle.status().stopped, None);
    eventually("stale", || {
        handle.status().frame == LedFrame::single(Led::System, LedLook::On)
    });
    assert!(sim.is_on(Led::System));
    handle.show(live);
    eventually("alive again", || handle.status().frame == live);
}
