//! Status LEDs and reset button over embedded-hal; Raspberry Pi, GPIO cdev and simulated backends.
//!
//! # Layout
//! - [`pattern`]: each [`LedLook`](boxidr_model::LedLook) as timed on/off steps (pure data).
//! - [`player`]: plays a [`LedFrame`](boxidr_model::LedFrame) on four `OutputPin`s, driven by a
//!   clock passed in.
//! - [`button`]: debounced reset button; short press, 10 s hold → factory-reset request.
//! - [`runner`]: the LED thread and the firmware's [`LedHandle`], with defined end states.
//! - [`sim`]: the simulated board (records transitions, renders a terminal line).
//! - [`clock`]: monotonic time as a parameter ([`MonotonicClock`], [`ManualClock`]).

pub mod button;
pub mod clock;
pub mod pattern;
pub mod player;
pub mod runner;
pub mod sim;

pub use button::{ButtonConfig, ButtonEvent, ButtonTracker};
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use player::LedPlayer;
pub use runner::{BoardStatus, ButtonCallback, LedHandle, RunnerConfig, Stopped};
pub use sim::SimBoard;
