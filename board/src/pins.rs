//! Which Raspberry Pi this is and which GPIO lines the LEDs and the button use, in one place.
//!
//! All supported boards share the 40-pin header numbering, so the default wiring is the same
//! everywhere; what differs is the GPIO controller the header lines belong to (its character-device
//! label) and the name of the on-board activity LED. Config may override any field
//! ([`PinOverrides`]).
//!
//! Default wiring (BCM GPIO numbers, header pin in brackets), each LED through a ~330 Ω resistor to
//! ground, the button between its GPIO and ground (internal pull-up):
//!
//! | Signal | GPIO | Header pin |
//! |---|---|---|
//! | SYSTEM LED | 17 | 11 |
//! | BOX LED | 27 | 13 |
//! | INSIGHTIDR LED | 22 | 15 |
//! | ATTENTION LED | 23 | 16 |
//! | reset button | 24 | 18 |
//! | ground | — | 14, 20 |

use std::fmt;
use std::path::Path;

/// Where Linux exposes the board's model string.
pub const DEVICE_TREE_MODEL: &str = "/proc/device-tree/model";
/// Where Linux exposes the board's device-tree `compatible` list.
pub const DEVICE_TREE_COMPATIBLE: &str = "/sys/firmware/devicetree/base/compatible";

/// A supported board family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoardModel {
    /// Raspberry Pi 3 Model B.
    Pi3B,
    /// Raspberry Pi 3 Model B+.
    Pi3BPlus,
    /// Raspberry Pi 4 Model B (and Pi 400, same SoC and header).
    Pi4B,
    /// Raspberry Pi 5.
    Pi5,
    /// Raspberry Pi Zero 2 W.
    Zero2W,
    /// Compute Module 4 on a carrier with the 40-pin header (e.g. the CM4 IO board).
    Cm4,
}

impl BoardModel {
    /// Every supported board.
    pub const ALL: [Self; 6] = [
        Self::Pi3B,
        Self::Pi3BPlus,
        Self::Pi4B,
        Self::Pi5,
        Self::Zero2W,
        Self::Cm4,
    ];

    /// Human name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pi3B => "Raspberry Pi 3 Model B",
            Self::Pi3BPlus => "Raspberry Pi 3 Model B+",
            Self::Pi4B => "Raspberry Pi 4 Model B",
            Self::Pi5 => "Raspberry Pi 5",
            Self::Zero2W => "Raspberry Pi Zero 2 W",
            Self::Cm4 => "Raspberry Pi Compute Module 4",
        }
    }

    /// The default pin map of this board.
    pub fn pin_map(self) -> PinMap {
        let chip = match self {
            Self::Pi3B | Self::Pi3BPlus | Self::Zero2W => "pinctrl-bcm2835",
            Self::Pi4B | Self::Cm4 => "pinctrl-bcm2711",
            Self::Pi5 => "pinctrl-rp1",
        };
        PinMap {
            chip: chip.to_owned(),
            ..PinMap::default()
        }
    }
}

impl fmt::Display for BoardModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// GPIO lines and wiring of the status LEDs and the reset button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMap {
    /// GPIO numbers (= line offsets on the header's GPIO chip) of SYSTEM, BOX, INSIGHTIDR,
    /// ATTENTION.
    pub leds: [u32; 4],
    /// GPIO of the reset button, `None` when the box has none.
    pub button: Option<u32>,
    /// LEDs light on a low level (wired from 3.3 V to the GPIO).
    pub led_active_low: bool,
    /// Button pulls the line high when pressed (wired to 3.3 V; pull-down instead of pull-up).
    pub button_active_high: bool,
    /// Character-device backend: the GPIO chip holding the header lines, by label
    /// (`pinctrl-bcm2711`) or by path (`/dev/gpiochip0`).
    pub chip: String,
    /// Name under `/sys/class/leds` of the on-board activity LED to use as a heartbeat mirror.
    pub act_led: Option<String>,
}

impl Default for PinMap {
    /// The header wiring of the module documentation, on an unknown chip label.
    fn default() -> Self {
        Self {
            leds: [17, 27, 22, 23],
            button: Some(24),
            led_active_low: false,
            button_active_high: false,
            chip: "pinctrl-bcm2835".to_owned(),
            act_led: Some("ACT".to_owned()),
        }
    }
}

/// Config overrides of a [`PinMap`]; `None` keeps the board's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinOverrides {
    /// LED GPIOs in position order.
    pub leds: Option<[u32; 4]>,
    /// Button GPIO; `Some(None)` means "no button".
    pub button: Option<Option<u32>>,
    /// LED polarity.
    pub led_active_low: Option<bool>,
    /// Button polarity.
    pub button_active_high: Option<bool>,
    /// GPIO chip label or path.
    pub chip: Option<String>,
    /// Activity LED name; `Some(None)` disables the mirror.
    pub act_led: Option<Option<String>>,
}

impl PinMap {
    /// This map with `overrides` applied.
    #[must_use]
    pub fn with_overrides(mut self, overrides: &PinOverrides) -> Self {
        let o = overrides.clone();
        if let Some(v) = o.leds {
            self.leds = v;
        }
        if let Some(v) = o.button {
            self.button = v;
        }
        if let Some(v) = o.led_active_low {
            self.led_active_low = v;
        }
        if let Some(v) = o.button_active_high {
            self.button_active_high = v;
        }
        if let Some(v) = o.chip {
            self.chip = v;
        }
        if let Some(v) = o.act_led {
            self.act_led = v;
        }
        self
    }

    /// Refuses maps that use a line twice.
    pub fn validate(&self) -> Result<(), PinMapError> {
        let mut lines: Vec<u32> = self.leds.to_vec();
        lines.extend(self.button);
        for (i, a) in lines.iter().enumerate() {
            if lines[i + 1..].contains(a) {
                return Err(PinMapError::LineUsedTwice(*a));
            }
        }
        Ok(())
    }
}

/// A pin map that cannot be wired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinMapError {
    /// Two signals on one GPIO.
    #[error("GPIO {0} is assigned twice in the LED/button pin map")]
    LineUsedTwice(u32),
}

/// The board could not be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// Neither device-tree file exists: not a device-tree machine (a PC, a container).
    #[error("no device tree found ({model} and {compatible} are missing): not a Raspberry Pi")]
    NoDeviceTree {
        /// The model path tried.
        model: String,
        /// The compatible path tried.
        compatible: String,
    },
    /// A device tree, but of a board we have no pin map for.
    #[error("unsupported board {model:?}: set the LED pins in the configuration")]
    Unsupported {
        /// The model string (or first compatible entry) found.
        model: String,
    },
}

/// Identifies the board from the device tree. `model_path` and `compatible_path` are normally
/// [`DEVICE_TREE_MODEL`] and [`DEVICE_TREE_COMPATIBLE`]; tests pass temporary files. The
/// `compatible` list is more precise and is read first; the model string is the fallback.
pub fn detect_board(model_path: &Path, compatible_path: &Path) -> Result<BoardModel, DetectError> {
    let compatible = std::fs::read(compatible_path).ok();
    let model = std::fs::read(model_path).ok();
    if compatible.is_none() && model.is_none() {
        return Err(DetectError::NoDeviceTree {
            model: model_path.display().to_string(),
            compatible: compatible_path.display().to_string(),
        });
    }
    if let Some(found) = compatible.as_deref().and_then(from_compatible) {
        return Ok(found);
    }
    let model_text = model.as_deref().map(dt_string).unwrap_or_default();
    if let Some(found) = from_model(&model_text) {
        return Ok(found);
    }
    let first_compatible = compatible.as_deref().map(dt_string).unwrap_or_default();
    let shown = if model_text.is_empty() {
        first_compatible
    } else {
        model_text
    };
    Err(DetectError::Unsupported { model: shown })
}

/// Detects the board from the standard device-tree paths.
pub fn detect_board_here() -> Result<BoardModel, DetectError> {
    detect_board(
        Path::new(DEVICE_TREE_MODEL),
        Path::new(DEVICE_TREE_COMPATIBLE),
    )
}

/// The first NUL-terminated string of a device-tree property, trimmed.
fn dt_string(bytes: &[u8]) -> String {
    let first = bytes.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(first).trim().to_owned()
}

/// Board from a NUL-separated `compatible` list such as `raspberrypi,4-model-b\0brcm,bcm2711\0`.
fn from_compatible(bytes: &[u8]) -> Option<BoardModel> {
    bytes.split(|b| *b == 0).find_map(|entry| match entry {
        b"raspberrypi,3-model-b" => Some(BoardModel::Pi3B),
        b"raspberrypi,3-model-b-plus" => Some(BoardModel::Pi3BPlus),
        b"raspberrypi,4-model-b" | b"raspberrypi,400" => Some(BoardModel::Pi4B),
        b"raspberrypi,5-model-b" => Some(BoardModel::Pi5),
        b"raspberrypi,model-zero-2-w" => Some(BoardModel::Zero2W),
        b"raspberrypi,4-compute-module" => Some(BoardModel::Cm4),
        _ => None,
    })
}

/// Board from a model string such as `Raspberry Pi 4 Model B Rev 1.4`.
fn from_model(model: &str) -> Option<BoardModel> {
    let m = model.to_ascii_lowercase();
    let table = [
        ("raspberry pi 3 model b plus", BoardModel::Pi3BPlus),
        ("raspberry pi 3 model b", BoardModel::Pi3B),
        ("raspberry pi 4 model b", BoardModel::Pi4B),
        ("raspberry pi 400", BoardModel::Pi4B),
        ("raspberry pi 5", BoardModel::Pi5),
        ("raspberry pi zero 2 w", BoardModel::Zero2W),
        ("raspberry pi compute module 4", BoardModel::Cm4),
    ];
    table
        .into_iter()
        .find(|(prefix, _)| m.starts_with(prefix))
        .map(|(_, b)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(
        model: Option<&[u8]>,
        compatible: Option<&[u8]>,
    ) -> (tempfile::TempDir, Result<BoardModel, DetectError>) {
        let dir = tempfile::tempdir().unwrap();
        let (m, c) = (dir.path().join("model"), dir.path().join("compatible"));
        if let Some(bytes) = model {
            std::fs::write(&m, bytes).unwrap();
        }
        if let Some(bytes) = compatible {
            std::fs::write(&c, bytes).unwrap();
        }
        let found = detect_board(&m, &c);
        (dir, found)
    }

    /// Each supported board is found from its real `compatible` list.
    #[test]
    fn detects_from_compatible() {
        let cases: [(&[u8], BoardModel); 7] = [
            (b"raspberrypi,3-model-b\0brcm,bcm2837\0", BoardModel::Pi3B),
            (
                b"raspberrypi,3-model-b-plus\0brcm,bcm2837\0",
                BoardModel::Pi3BPlus,
            ),
            (b"raspberrypi,4-model-b\0brcm,bcm2711\0", BoardModel::Pi4B),
            (b"raspberrypi,5-model-b\0brcm,bcm2712\0", BoardModel::Pi5),
            (
                b"raspberrypi,model-zero-2-w\0brcm,bcm2837\0",
                BoardModel::Zero2W,
            ),
            (
                b"raspberrypi,4-compute-module\0brcm,bcm2711\0",
                BoardModel::Cm4,
            ),
            (b"raspberrypi,400\0brcm,bcm2711\0", BoardModel::Pi4B),
        ];
        for (compatible, want) in cases {
            assert_eq!(files(None, Some(compatible)).1, Ok(want));
        }
    }

    /// Without a useful `compatible`, the model string decides ("Plus" before plain "B").
    #[test]
    fn detects_from_model_string() {
        let cases: [(&[u8], BoardModel); 6] = [
            (b"Raspberry Pi 3 Model B Rev 1.2\0", BoardModel::Pi3B),
            (
                b"Raspberry Pi 3 Model B Plus Rev 1.3\0",
                BoardModel::Pi3BPlus,
            ),
            (b"Raspberry Pi 4 Model B Rev 1.4\0", BoardModel::Pi4B),
            (b"Raspberry Pi 5 Model B Rev 1.0\0", BoardModel::Pi5),
            (b"Raspberry Pi Zero 2 W Rev 1.0\0", BoardModel::Zero2W),
            (b"Raspberry Pi Compute Module 4 Rev 1.0\0", BoardModel::Cm4),
        ];
        for (model, want) in cases {
            assert_eq!(files(Some(model), Some(b"brcm,bcm2835\0")).1, Ok(want));
        }
    }

    /// A PC has no device tree; another board is named in the error.
    #[test]
    fn unknown_machines() {
        assert!(matches!(
            files(None, None).1,
            Err(DetectError::NoDeviceTree { .. })
        ));
        let err = files(
            Some(b"Pine64 RockPro64 v2.1\0"),
            Some(b"pine64,rockpro64\0"),
        )
        .1;
        assert_eq!(
            err,
            Err(DetectError::Unsupported {
                model: "Pine64 RockPro64 v2.1".into()
            })
        );
        assert!(err.unwrap_err().to_string().contains("set the LED pins"));
    }

    /// Pin maps: Pi 5 lines live on the RP1 controller, overrides replace single fields, and a
    /// GPIO used twice is refused.
    #[test]
    fn pin_maps_and_overrides() {
        for board in BoardModel::ALL {
            assert_eq!(board.pin_map().validate(), Ok(()), "{board}");
            assert_eq!(board.pin_map().leds, [17, 27, 22, 23]);
        }
        assert_eq!(BoardModel::Pi5.pin_map().chip, "pinctrl-rp1");
        assert_eq!(BoardModel::Cm4.pin_map().chip, "pinctrl-bcm2711");
        assert_eq!(BoardModel::Zero2W.pin_map().chip, "pinctrl-bcm2835");
        let o = PinOverrides {
            leds: Some([5, 6, 13, 19]),
            button: Some(None),
            ..PinOverrides::default()
        };
        let map = BoardModel::Pi4B.pin_map().with_overrides(&o);
        assert_eq!(
            (map.leds, map.button, map.chip.as_str()),
            ([5, 6, 13, 19], None, "pinctrl-bcm2711")
        );
        let clash = PinOverrides {
            button: Some(Some(17)),
            ..PinOverrides::default()
        };
        assert_eq!(
            BoardModel::Pi3B.pin_map().with_overrides(&clash).validate(),
            Err(PinMapError::LineUsedTwice(17))
        );
    }
}
