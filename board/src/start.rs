//! One call for the firmware: find the board, open the best backend, start the LED thread.
//!
//! GPIO problems never stop the firmware: the LED thread then runs on a [`SimBoard`] (so the
//! status page still shows the LEDs) and [`StartedBoard::problem`] says why there are no
//! physical LEDs, for the log and the health model.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::{
    BackendChoice, BackendKind, GpioOpenError, gpiomem_present, open_pins, resolve_backend,
};
use crate::button::ButtonConfig;
use crate::clock::MonotonicClock;
use crate::pins::{
    BoardModel, DEVICE_TREE_COMPATIBLE, DEVICE_TREE_MODEL, DetectError, PinMap, PinOverrides,
    detect_board,
};
use crate::runner::{ButtonCallback, DEFAULT_LIVENESS_TIMEOUT, LedHandle, RunnerConfig, spawn};
use crate::sim::SimBoard;
use crate::sysfs_led::{LEDS_CLASS_DIR, SysfsLed};

/// Where the board crate looks at the system; tests point these at temporary directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPaths {
    /// [`DEVICE_TREE_MODEL`].
    pub dt_model: PathBuf,
    /// [`DEVICE_TREE_COMPATIBLE`].
    pub dt_compatible: PathBuf,
    /// `/dev`: gpiomem and gpiochip nodes.
    pub dev_dir: PathBuf,
    /// [`LEDS_CLASS_DIR`].
    pub leds_class: PathBuf,
}

impl Default for SystemPaths {
    fn default() -> Self {
        Self {
            dt_model: DEVICE_TREE_MODEL.into(),
            dt_compatible: DEVICE_TREE_COMPATIBLE.into(),
            dev_dir: "/dev".into(),
            leds_class: LEDS_CLASS_DIR.into(),
        }
    }
}

/// Board settings, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardConfig {
    /// Which GPIO backend.
    pub backend: BackendChoice,
    /// Pin map changes over the detected board's defaults.
    pub pins: PinOverrides,
    /// Reset-button timings.
    pub button: ButtonConfig,
    /// Where to look.
    pub paths: SystemPaths,
    /// See [`RunnerConfig::liveness_timeout`].
    pub liveness_timeout: Option<Duration>,
}

impl Default for BoardConfig {
    fn default() -> Self {
        Self {
            backend: BackendChoice::default(),
            pins: PinOverrides::default(),
            button: ButtonConfig::default(),
            paths: SystemPaths::default(),
            liveness_timeout: Some(DEFAULT_LIVENESS_TIMEOUT),
        }
    }
}

impl BoardConfig {
    /// The simulated board only (development, `boxidr demo`, CI).
    pub fn simulated() -> Self {
        Self {
            backend: BackendChoice::Simulated,
            ..Self::default()
        }
    }
}

/// Why the LEDs run without hardware.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardProblem {
    /// The board is unknown and no LED pins are configured.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// GPIO could not be opened.
    #[error(transparent)]
    Gpio(#[from] GpioOpenError),
    /// GPIO opened but an LED write failed.
    #[error("{0}")]
    Write(String),
}

/// The running LED thread and what it runs on.
#[derive(Debug)]
pub struct StartedBoard {
    /// Drive the LEDs through this.
    pub handle: LedHandle,
    /// The backend in use ([`BackendKind::Simulated`] after a fallback).
    pub kind: BackendKind,
    /// The detected board, if any.
    pub board: Option<BoardModel>,
    /// The pin map in use.
    pub pins: PinMap,
    /// The simulated board, when `kind` is simulated: render it, press its button.
    pub sim: Option<SimBoard>,
    /// Why physical LEDs are missing (`None` when they run, or when simulation was asked for).
    pub problem: Option<BoardProblem>,
    /// The ACT LED mirror could not be set up (harmless; usually needs root).
    pub act_led_note: Option<String>,
}

/// The board and pin map to use: detected defaults plus overrides. An unknown board is fine when
/// the LED pins are configured explicitly.
pub fn resolve_pins(cfg: &BoardConfig) -> (Option<BoardModel>, Result<PinMap, DetectError>) {
    match detect_board(&cfg.paths.dt_model, &cfg.paths.dt_compatible) {
        Ok(board) => (Some(board), Ok(board.pin_map().with_overrides(&cfg.pins))),
        Err(_) if cfg.pins.leds.is_some() => {
            (None, Ok(PinMap::default().with_overrides(&cfg.pins)))
        }
        Err(e) => (None, Err(e)),
    }
}

/// Opens the configured backend and starts the LED thread, falling back to the simulated board.
/// Button events go to `on_event` on the LED thread. Errors only if the thread cannot be spawned.
pub fn start(cfg: &BoardConfig, on_event: ButtonCallback) -> std::io::Result<StartedBoard> {
    let sim = SimBoard::new();
    let runner = |map: &PinMap| RunnerConfig {
        led_active_low: map.led_active_low,
        button_active_high: map.button_active_high,
        button: cfg.button,
        liveness_timeout: cfg.liveness_timeout,
    };
    let start_sim = |board, map: PinMap, problem, on_event| -> std::io::Result<StartedBoard> {
        let sim_map = PinMap {
            led_active_low: false,
            button_active_high: false,
            ..map.clone()
        };
        let handle = spawn(
            sim.leds(),
            Some(sim.button()),
            MonotonicClock::new(),
            runner(&sim_map),
            "simulated",
            on_event,
        )?;
        Ok(StartedBoard {
            handle,
            kind: BackendKind::Simulated,
            board,
            pins: map,
            sim: Some(sim.clone()),
            problem,
            act_led_note: None,
        })
    };
    if cfg.backend == BackendChoice::Simulated {
        return start_sim(
            None,
            PinMap::default().with_overrides(&cfg.pins),
            None,
            on_event,
        );
    }
    let (board, map) = resolve_pins(cfg);
    let map = match map {
        Ok(map) => map,
        Err(e) => return start_sim(board, PinMap::default(), Some(e.into()), on_event),
    };
    let opened = resolve_backend(cfg.backend, gpiomem_present(&cfg.paths.dev_dir))
        .and_then(|kind| open_pins(kind, &map, &sim, &cfg.paths.dev_dir));
    let opened = match opened {
        Ok(opened) => opened,
        Err(e) => return start_sim(board, map, Some(e.into()), on_event),
    };
    let [system, bx, idr, attention] = opened.leds;
    let (system, act_led_note) = match map.act_led.as_deref() {
        Some(name) => match SysfsLed::open(&cfg.paths.leds_class, name) {
            Ok(led) => (system.mirrored_to(led), None),
            Err(e) => (
                system,
                Some(format!("activity LED {name} not mirrored: {e}")),
            ),
        },
        None => (system, None),
    };
    let handle = spawn(
        [system, bx, idr, attention],
        opened.button,
        MonotonicClock::new(),
        runner(&map),
        opened.kind.name(),
        on_event,
    )?;
    Ok(StartedBoard {
        handle,
        kind: opened.kind,
        board,
        pins: map,
        sim: None,
        problem: None,
        act_led_note,
    })
}

/// Whether `path` looks like a Raspberry Pi kernel with gpiomem (for diagnostics output).
pub fn describe_gpio(dev_dir: &Path) -> &'static str {
    if gpiomem_present(dev_dir) {
        "gpiomem present (Raspberry Pi kernel)"
    } else {
        "no gpiomem (mainline kernel)"
    }
}
