//! Status LEDs and reset button over embedded-hal; Raspberry Pi, GPIO cdev and simulated backends.
//!
//! The firmware calls [`start()`] with a [`BoardConfig`] and a button callback, then feeds the
//! returned [`LedHandle`] a [`LedFrame`](boxidr_model::LedFrame) whenever health changes. The LED
//! vocabulary itself lives in [`boxidr_model::led`]; the sticker table is `board/LEDS.md`.
//!
//! # Layout
//! - [`pattern`]: each look as timed on/off steps (pure data, fixed capacity).
//! - [`player`]: plays a frame on four `OutputPin`s, driven by a clock passed in.
//! - [`button`]: debounced reset button; short press, 10 s hold → factory-reset request.
//! - [`runner`]: the LED thread and the firmware's [`LedHandle`], with defined end states.
//! - [`pins`]: board detection from the device tree and the per-board pin maps.
//! - [`backend`]: rppal (feature `rpi`), GPIO character device (feature `cdev`), simulated; the
//!   automatic choice between them.
//! - [`start`](mod@start): one call that does all of the above and never fails for lack of GPIO.
//! - [`sim`]: the simulated board (records transitions, renders a terminal line).
//! - [`sysfs_led`]: the Pi's own activity LED as a heartbeat mirror.
//! - [`lamp_test`]: `boxidr leds --test`.
//! - [`clock`]: monotonic time as a parameter ([`MonotonicClock`], [`ManualClock`]).

pub mod backend;
pub mod button;
pub mod clock;
pub mod lamp_test;
pub mod pattern;
pub mod pins;
pub mod player;
pub mod runner;
pub mod sim;
pub mod start;
pub mod sysfs_led;

pub use backend::{BackendChoice, BackendKind, GpioOpenError};
pub use button::{ButtonConfig, ButtonEvent, ButtonTracker};
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use lamp_test::{LampStep, LedsTestReport, lamp_test_steps, leds_test, run_lamp_test};
pub use pins::{BoardModel, PinMap, PinOverrides, detect_board};
pub use player::LedPlayer;
pub use runner::{BoardStatus, ButtonCallback, LedHandle, RunnerConfig, Stopped};
pub use sim::SimBoard;
pub use start::{BoardConfig, BoardProblem, StartedBoard, SystemPaths, start};
