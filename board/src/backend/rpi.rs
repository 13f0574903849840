//! rppal backend (`/dev/gpiomem`, `/dev/gpiomem0` on the Pi 5). rppal types stay in this file.

use embedded_hal::digital::{InputPin, OutputPin, PinState};

use super::{BackendKind, GpioError, GpioOpenError, open_error};
use crate::pins::PinMap;

/// An LED line held through rppal. It keeps its level when dropped, so the final frame written
/// at shutdown (STOPPED or FAULT) stays visible after the process exits.
pub(super) struct Output(rppal::gpio::OutputPin);

/// The button line held through rppal, with the pull resistor the wiring needs.
pub(super) struct Input(rppal::gpio::InputPin);

fn line(n: u32) -> Result<u8, GpioOpenError> {
    u8::try_from(n).map_err(|_| {
        open_error(
            BackendKind::Rppal,
            format!("GPIO {n}"),
            "no such GPIO".into(),
        )
    })
}

/// Opens the LED outputs (dark) and the button input of `map`.
pub(super) fn open(map: &PinMap) -> Result<([Output; 4], Option<Input>), GpioOpenError> {
    let gpio = rppal::gpio::Gpio::new()
        .map_err(|e| open_error(BackendKind::Rppal, "the GPIO controller", e.to_string()))?;
    let get = |n: u32| -> Result<rppal::gpio::Pin, GpioOpenError> {
        gpio.get(line(n)?)
            .map_err(|e| open_error(BackendKind::Rppal, format!("GPIO {n}"), e.to_string()))
    };
    let mut leds = Vec::with_capacity(4);
    for n in map.leds {
        let pin = get(n)?;
        let mut out = if map.led_active_low {
            pin.into_output_high()
        } else {
            pin.into_output_low()
        };
        out.set_reset_on_drop(false);
        leds.push(Output(out));
    }
    let leds: [Output; 4] = leds
        .try_into()
        .map_err(|_| open_error(BackendKind::Rppal, "LED pins", "expected four".into()))?;
    let button = match map.button {
        Some(n) => {
            let pin = get(n)?;
            Some(Input(if map.button_active_high {
                pin.into_input_pulldown()
            } else {
                pin.into_input_pullup()
            }))
        }
        None => None,
    };
    Ok((leds, button))
}

impl Output {
    pub(super) fn set_state(&mut self, state: PinState) -> Result<(), GpioError> {
        OutputPin::set_state(&mut self.0, state).map_err(|e| match e {})
    }
}

impl Input {
    pub(super) fn is_high(&mut self) -> Result<bool, GpioError> {
        InputPin::is_high(&mut self.0).map_err(|e| match e {})
    }
}
