//! GPIO backends behind one pin type, and the choice between them.
//!
//! - `rppal` (cargo feature `rpi`): `/dev/gpiomem` (`/dev/gpiomem0` on the Pi 5), present with the
//!   Raspberry Pi kernel (Raspberry Pi OS).
//! - GPIO character device (cargo feature `cdev`): `/dev/gpiochipN`, any mainline kernel (our own
//!   Debian-kernel image has no gpiomem).
//! - simulated: [`SimBoard`], always available.
//!
//! [`GpioOutput`] and [`GpioInput`] wrap whichever is open, so no backend type leaves this crate.

use std::fmt;
use std::path::Path;
#[cfg(feature = "cdev")]
use std::path::PathBuf;

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin};

use crate::pins::{PinMap, PinMapError};
use crate::sim::{SimBoard, SimButton, SimPin};
use crate::sysfs_led::SysfsLed;

#[cfg(feature = "cdev")]
mod cdev;
#[cfg(feature = "rpi")]
mod rpi;

/// Which backend to use, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// rppal where `/dev/gpiomem` or `/dev/gpiomem0` exists, the character device otherwise.
    #[default]
    Auto,
    /// rppal (Raspberry Pi kernel).
    Rppal,
    /// GPIO character device (any kernel).
    Cdev,
    /// No hardware: the simulated board.
    Simulated,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "rppal" => Ok(Self::Rppal),
            "cdev" => Ok(Self::Cdev),
            "simulated" => Ok(Self::Simulated),
            other => Err(format!(
                "unknown GPIO backend {other:?}: expected auto, rppal, cdev or simulated"
            )),
        }
    }
}

/// The backend actually driving the pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// rppal over gpiomem.
    Rppal,
    /// GPIO character device.
    Cdev,
    /// The simulated board.
    Simulated,
}

impl BackendKind {
    /// Short name, as shown in [`BoardStatus::backend`](crate::BoardStatus::backend).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rppal => "rppal",
            Self::Cdev => "cdev",
            Self::Simulated => "simulated",
        }
    }

    /// Whether this build contains the backend.
    pub const fn is_compiled(self) -> bool {
        match self {
            Self::Rppal => cfg!(feature = "rpi"),
            Self::Cdev => cfg!(feature = "cdev"),
            Self::Simulated => true,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the Raspberry Pi kernel's gpiomem device exists under `dev_dir` (normally `/dev`).
pub fn gpiomem_present(dev_dir: &Path) -> bool {
    dev_dir.join("gpiomem").exists() || dev_dir.join("gpiomem0").exists()
}

/// Resolves `choice` to a backend compiled into this build. `Auto` prefers rppal when gpiomem
/// exists and the character device otherwise, falling back to whichever is compiled in.
pub fn resolve_backend(choice: BackendChoice, gpiomem: bool) -> Result<BackendKind, GpioOpenError> {
    let want = match choice {
        BackendChoice::Simulated => return Ok(BackendKind::Simulated),
        BackendChoice::Rppal => BackendKind::Rppal,
        BackendChoice::Cdev => BackendKind::Cdev,
        BackendChoice::Auto => {
            let preferred = if gpiomem {
                BackendKind::Rppal
            } else {
                BackendKind::Cdev
            };
            let other = if gpiomem {
                BackendKind::Cdev
            } else {
                BackendKind::Rppal
            };
            return [preferred, other]
                .into_iter()
                .find(|k| k.is_compiled())
                .ok_or(GpioOpenError::NoBackendCompiled);
        }
    };
    if want.is_compiled() {
        Ok(want)
    } else {
        Err(GpioOpenError::NotCompiled(want))
    }
}

/// GPIO could not be opened. The firmware keeps running without physical LEDs and reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpioOpenError {
    /// This build has no hardware backend.
    #[error("this build has no GPIO backend (cargo features `rpi` and `cdev` are off)")]
    NoBackendCompiled,
    /// The configured backend is not in this build.
    #[error("GPIO backend {0} is configured but not compiled in (cargo feature `{feature}`)", feature = match .0 { BackendKind::Rppal => "rpi", _ => "cdev" })]
    NotCompiled(BackendKind),
    /// The pin map is unusable.
    #[error(transparent)]
    PinMap(#[from] PinMapError),
    /// The backend refused.
    #[error("{backend}: cannot open {what}: {message}{hint}")]
    Open {
        /// Which backend.
        backend: BackendKind,
        /// What was being opened (`GPIO 17`, `/dev/gpiochip0`).
        what: String,
        /// The backend's message.
        message: String,
        /// What to do about it (starts with `; ` when present).
        hint: &'static str,
    },
}

/// A pin operation failed after opening.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GpioError(pub String);

impl embedded_hal::digital::Error for GpioError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

enum OutputInner {
    Sim(SimPin),
    #[cfg(feature = "rpi")]
    Rppal(rpi::Output),
    #[cfg(feature = "cdev")]
    Cdev(cdev::Output),
}

/// An LED output on any backend, optionally mirrored to an on-board sysfs LED.
pub struct GpioOutput {
    inner: OutputInner,
    mirror: Option<SysfsLed>,
}

impl fmt::Debug for GpioOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.inner {
            OutputInner::Sim(_) => BackendKind::Simulated,
            #[cfg(feature = "rpi")]
            OutputInner::Rppal(_) => BackendKind::Rppal,
            #[cfg(feature = "cdev")]
            OutputInner::Cdev(_) => BackendKind::Cdev,
        };
        f.debug_struct("GpioOutput")
            .field("backend", &backend)
            .field("mirror", &self.mirror)
            .finish()
    }
}

impl GpioOutput {
    /// A simulated LED.
    pub fn simulated(pin: SimPin) -> Self {
        Self {
            inner: OutputInner::Sim(pin),
            mirror: None,
        }
    }

    /// Also drives `led` (e.g. the Pi's ACT LED) with the same level. Mirror errors are ignored
    /// after the first one, which disables the mirror.
    #[must_use]
    pub fn mirrored_to(mut self, led: SysfsLed) -> Self {
        self.mirror = Some(led);
        self
    }
}

impl ErrorType for GpioOutput {
    type Error = GpioError;
}

impl OutputPin for GpioOutput {
    fn set_low(&mut self) -> Result<(), GpioError> {
        self.set_state(embedded_hal::digital::PinState::Low)
    }

    fn set_high(&mut self) -> Result<(), GpioError> {
        self.set_state(embedded_hal::digital::PinState::High)
    }

    fn set_state(&mut self, state: embedded_hal::digital::PinState) -> Result<(), GpioError> {
        let high = state == embedded_hal::digital::PinState::High;
        if let Some(mirror) = self.mirror.as_mut() {
            if mirror.set(high).is_err() {
                self.mirror = None;
            }
        }
        match &mut self.inner {
            OutputInner::Sim(p) => p.set_state(state).map_err(|e| match e {}),
            #[cfg(feature = "rpi")]
            OutputInner::Rppal(p) => p.set_state(state),
            #[cfg(feature = "cdev")]
            OutputInner::Cdev(p) => p.set_state(state),
        }
    }
}

enum InputInner {
    Sim(SimButton),
    #[cfg(feature = "rpi")]
    Rppal(rpi::Input),
    #[cfg(feature = "cdev")]
    Cdev(cdev::Input),
}

/// The reset button input on any backend.
pub struct GpioInput {
    inner: InputInner,
}

impl fmt::Debug for GpioInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpioInput").finish_non_exhaustive()
    }
}

impl GpioInput {
    /// The simulated button.
    pub fn simulated(pin: SimButton) -> Self {
        Self {
            inner: InputInner::Sim(pin),
        }
    }
}

impl ErrorType for GpioInput {
    type Error = GpioError;
}

impl InputPin for GpioInput {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        match &mut self.inner {
            InputInner::Sim(p) => p.is_high().map_err(|e| match e {}),
            #[cfg(feature = "rpi")]
            InputInner::Rppal(p) => p.is_high(),
            #[cfg(feature = "cdev")]
            InputInner::Cdev(p) => p.is_high(),
        }
    }

    fn is_low(&mut self) -> Result<bool, GpioError> {
        self.is_high().map(|h| !h)
    }
}

/// Opened LED pins (in [`Led::ALL`](boxidr_model::Led::ALL) order) and button.
#[derive(Debug)]
pub struct OpenedPins {
    /// SYSTEM, BOX, INSIGHTIDR, ATTENTION.
    pub leds: [GpioOutput; 4],
    /// The reset button, if the map has one.
    pub button: Option<GpioInput>,
    /// The backend that opened them.
    pub kind: BackendKind,
}

/// Opens the pins of `map` on `kind`. `sim` backs [`BackendKind::Simulated`]; `dev_dir` is where
/// GPIO chips are looked up by label (normally `/dev`).
pub fn open_pins(
    kind: BackendKind,
    map: &PinMap,
    sim: &SimBoard,
    dev_dir: &Path,
) -> Result<OpenedPins, GpioOpenError> {
    map.validate()?;
    match kind {
        BackendKind::Simulated => Ok(OpenedPins {
            leds: sim.leds().map(GpioOutput::simulated),
            button: map.button.map(|_| GpioInput::simulated(sim.button())),
            kind,
        }),
        BackendKind::Rppal => open_rppal(map),
        BackendKind::Cdev => open_cdev(map, dev_dir),
    }
}

#[cfg(feature = "rpi")]
fn open_rppal(map: &PinMap) -> Result<OpenedPins, GpioOpenError> {
    let (leds, button) = rpi::open(map)?;
    Ok(OpenedPins {
        leds: leds.map(|p| GpioOutput {
            inner: OutputInner::Rppal(p),
            mirror: None,
        }),
        button: button.map(|p| GpioInput {
            inner: InputInner::Rppal(p),
        }),
        kind: BackendKind::Rppal,
    })
}

#[cfg(not(feature = "rpi"))]
fn open_rppal(_map: &PinMap) -> Result<OpenedPins, GpioOpenError> {
    Err(GpioOpenError::NotCompiled(BackendKind::Rppal))
}

#[cfg(feature = "cdev")]
fn open_cdev(map: &PinMap, dev_dir: &Path) -> Result<OpenedPins, GpioOpenError> {
    let chip = cdev::find_chip(&map.chip, dev_dir)?;
    let (leds, button) = cdev::open(&chip, map)?;
    Ok(OpenedPins {
        leds: leds.map(|p| GpioOutput {
            inner: OutputInner::Cdev(p),
            mirror: None,
        }),
        button: button.map(|p| GpioInput {
            inner: InputInner::Cdev(p),
        }),
        kind: BackendKind::Cdev,
    })
}

#[cfg(not(feature = "cdev"))]
fn open_cdev(_map: &PinMap, _dev_dir: &Path) -> Result<OpenedPins, GpioOpenError> {
    Err(GpioOpenError::NotCompiled(BackendKind::Cdev))
}

/// The path of the GPIO chip `chip` (a path, or a label looked up among `dev_dir/gpiochip*`).
#[cfg(feature = "cdev")]
pub fn find_gpio_chip(chip: &str, dev_dir: &Path) -> Result<PathBuf, GpioOpenError> {
    cdev::find_chip(chip, dev_dir)
}

/// Hint appended to permission errors.
pub(crate) const PERMISSION_HINT: &str = "; run the service in the `gpio` group (SupplementaryGroups=gpio) or grant the device node to it";

#[allow(
    dead_code,
    reason = "used by whichever hardware backend is compiled in"
)]
pub(crate) fn open_error(
    backend: BackendKind,
    what: impl Into<String>,
    message: String,
) -> GpioOpenError {
    let denied = message.to_ascii_lowercase().contains("permission denied");
    GpioOpenError::Open {
        backend,
        what: what.into(),
        message,
        hint: if denied { PERMISSION_HINT } else { "" },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Auto picks rppal with gpiomem and the character device without, within what is compiled.
    #[test]
    fn automatic_choice() {
        let with = resolve_backend(BackendChoice::Auto, true);
        let without = resolve_backend(BackendChoice::Auto, false);
        match (cfg!(feature = "rpi"), cfg!(feature = "cdev")) {
            (true, true) => {
                assert_eq!(with, Ok(BackendKind::Rppal));
                assert_eq!(without, Ok(BackendKind::Cdev));
            }
            (true, false) => assert_eq!(
                (with, without),
                (Ok(BackendKind::Rppal), Ok(BackendKind::Rppal))
            ),
            (false, true) => assert_eq!(
                (with, without),
                (Ok(BackendKind::Cdev), Ok(BackendKind::Cdev))
            ),
            (false, false) => assert_eq!(without, Err(GpioOpenError::NoBackendCompiled)),
        }
        assert_eq!(
            resolve_backend(BackendChoice::Simulated, true),
            Ok(BackendKind::Simulated)
        );
        assert_eq!("cdev".parse::<BackendChoice>(), Ok(BackendChoice::Cdev));
        assert!("mem".parse::<BackendChoice>().is_err());
    }

    /// gpiomem detection looks for either device name under the given directory.
    #[test]
    fn gpiomem_detection() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!gpiomem_present(dir.path()));
        std::fs::write(dir.path().join("gpiomem0"), b"").unwrap();
        assert!(gpiomem_present(dir.path()));
    }

    /// Permission problems carry the fix in the message.
    #[test]
    fn permission_hint() {
        let e = open_error(
            BackendKind::Cdev,
            "/dev/gpiochip0",
            "Permission denied (os error 13)".into(),
        );
        assert!(e.to_string().contains("SupplementaryGroups=gpio"), "{e}");
        let err = resolve_backend(BackendChoice::Rppal, true);
        if !cfg!(feature = "rpi") {
            assert!(err.unwrap_err().to_string().contains("`rpi`"));
        }
    }
}
