//! GPIO character-device backend (`/dev/gpiochipN`) through gpiocdev. Its types stay in this file.

use std::path::{Path, PathBuf};

use embedded_hal::digital::{InputPin as _, OutputPin as _, PinState};
use gpiocdev::line::{Bias, Value};

use super::{BackendKind, GpioError, GpioOpenError, open_error};
use crate::pins::PinMap;

/// Consumer name shown by `gpioinfo` for our lines.
const CONSUMER: &str = "boxidr";

/// An LED line requested as an output.
pub(super) struct Output(gpiocdev_embedded_hal::OutputPin);

/// The button line requested as an input with its pull resistor.
pub(super) struct Input(gpiocdev_embedded_hal::InputPin);

fn err(what: impl Into<String>, e: impl std::fmt::Display) -> GpioOpenError {
    open_error(BackendKind::Cdev, what, e.to_string())
}

/// `chip` as a path if it is one, else the `dev_dir/gpiochip*` whose label is `chip`.
pub(super) fn find_chip(chip: &str, dev_dir: &Path) -> Result<PathBuf, GpioOpenError> {
    if chip.starts_with('/') {
        return Ok(PathBuf::from(chip));
    }
    let entries = std::fs::read_dir(dev_dir).map_err(|e| err(dev_dir.display().to_string(), e))?;
    let mut seen = Vec::new();
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("gpiochip"))
        })
        .collect();
    candidates.sort();
    for path in candidates {
        let Ok(info) = gpiocdev::Chip::from_path(&path).and_then(|c| c.info()) else {
            continue;
        };
        if info.label == chip {
            return Ok(path);
        }
        seen.push(format!("{} ({})", path.display(), info.label));
    }
    let found = if seen.is_empty() {
        "no readable GPIO chips".to_owned()
    } else {
        seen.join(", ")
    };
    Err(err(
        format!("the GPIO chip labelled {chip:?}"),
        format!("not found; present: {found}"),
    ))
}

/// Opens the LED outputs (dark) and the button input of `map` on `chip`.
pub(super) fn open(
    chip: &Path,
    map: &PinMap,
) -> Result<([Output; 4], Option<Input>), GpioOpenError> {
    let what = |n: u32| format!("line {n} of {}", chip.display());
    let mut leds = Vec::with_capacity(4);
    for n in map.leds {
        let mut builder = gpiocdev::Request::builder();
        builder.on_chip(chip).with_consumer(CONSUMER).with_line(n);
        if map.led_active_low {
            // Polarity is applied by the player; the line starts at the dark (high) level.
            builder.as_output(Value::Active);
        } else {
            builder.as_output(Value::Inactive);
        }
        let req = builder.request().map_err(|e| err(what(n), e))?;
        let pin = gpiocdev_embedded_hal::OutputPin::try_from(req).map_err(|e| err(what(n), e))?;
        leds.push(Output(pin));
    }
    let leds: [Output; 4] = leds
        .try_into()
        .map_err(|_| err("LED lines", "expected four"))?;
    let button = match map.button {
        Some(n) => {
            let bias = if map.button_active_high {
                Bias::PullDown
            } else {
                Bias::PullUp
            };
            let req = gpiocdev::Request::builder()
                .on_chip(chip)
                .with_consumer(CONSUMER)
                .with_line(n)
                .as_input()
                .with_bias(bias)
                .request()
                .map_err(|e| err(what(n), e))?;
            Some(Input(
                gpiocdev_embedded_hal::InputPin::try_from(req).map_err(|e| err(what(n), e))?,
            ))
        }
        None => None,
    };
    Ok((leds, button))
}

impl Output {
    pub(super) fn set_state(&mut self, state: PinState) -> Result<(), GpioError> {
        self.0
            .set_state(state)
            .map_err(|e| GpioError(e.to_string()))
    }
}

impl Input {
    pub(super) fn is_high(&mut self) -> Result<bool, GpioError> {
        self.0.is_high().map_err(|e| GpioError(e.to_string()))
    }
}
