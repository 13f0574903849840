//! An on-board LED under `/sys/class/leds` (the Pi's ACT LED), used as a heartbeat mirror.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where Linux lists LEDs.
pub const LEDS_CLASS_DIR: &str = "/sys/class/leds";

/// A kernel LED driven through its `brightness` file, with the kernel trigger switched off.
#[derive(Debug)]
pub struct SysfsLed {
    dir: PathBuf,
    brightness: File,
}

impl SysfsLed {
    /// Takes over `class_dir/name` (e.g. `/sys/class/leds/ACT`): sets its trigger to `none` and
    /// opens `brightness`. Needs write access to both files (root, or a udev rule).
    pub fn open(class_dir: &Path, name: &str) -> io::Result<Self> {
        let dir = class_dir.join(name);
        std::fs::write(dir.join("trigger"), b"none")?;
        let brightness = OpenOptions::new()
            .write(true)
            .open(dir.join("brightness"))?;
        Ok(Self { dir, brightness })
    }

    /// Lights (`true`) or darkens the LED.
    pub fn set(&mut self, on: bool) -> io::Result<()> {
        self.brightness.write_all(if on { b"1\n" } else { b"0\n" })
    }

    /// Hands the LED back to the kernel's `mmc0` (SD activity) trigger, its usual default.
    pub fn release(self) -> io::Result<()> {
        std::fs::write(self.dir.join("trigger"), b"mmc0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trigger is switched off and brightness follows the level.
    #[test]
    fn drives_brightness() {
        let class = tempfile::tempdir().unwrap();
        let dir = class.path().join("ACT");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("trigger"), b"mmc0").unwrap();
        std::fs::write(dir.join("brightness"), b"0").unwrap();
        let mut led = SysfsLed::open(class.path(), "ACT").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("trigger")).unwrap(),
            "none"
        );
        led.set(true).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("brightness")).unwrap(),
            "1\n"
        );
        assert!(SysfsLed::open(class.path(), "PWR").is_err());
    }
}
