//! The character-device backend against a real GPIO chip: the kernel's `gpio-sim` module,
//! configured through configfs. Needs root, `CONFIG_GPIO_SIM` and configfs; where the machine
//! lacks them the test prints why and passes without checking anything (it never fakes the chip).
#![cfg(feature = "cdev")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use boxidr_board::backend::{BackendKind, open_pins};
use boxidr_board::{ButtonConfig, ButtonTracker, LedPlayer, PinMap, SimBoard};
use boxidr_model::{Led, LedFrame, LedLook};
use embedded_hal::digital::InputPin;

const CONFIGFS: &str = "/sys/kernel/config";
const LABEL: &str = "boxidr-gpio-sim";

/// A live gpio-sim chip, removed on drop.
struct SimChip {
    dir: PathBuf,
    sysfs: PathBuf,
}

impl SimChip {
    fn create() -> Result<Self, String> {
        let root = Path::new(CONFIGFS).join("gpio-sim");
        if !root.exists() {
            let _ = std::process::Command::new("modprobe")
                .arg("gpio-sim")
                .status();
        }
        if !Path::new(CONFIGFS).exists() {
            return Err(format!(
                "{CONFIGFS} does not exist: the kernel has no configfs mounted or built in"
            ));
        }
        if !root.exists() {
            return Err(format!(
                "{} does not exist: the gpio-sim module is not available",
                root.display()
            ));
        }
        let dir = root.join(format!("boxidr-{}", std::process::id()));
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        std::fs::create_dir(&dir).map_err(|e| io("create gpio-sim device", e))?;
        let bank = dir.join("gpio-bank0");
        std::fs::create_dir(&bank).map_err(|e| io("create bank", e))?;
        std::fs::write(bank.join("num_lines"), "32").map_err(|e| io("num_lines", e))?;
        std::fs::write(bank.join("label"), LABEL).map_err(|e| io("label", e))?;
        std::fs::write(dir.join("live"), "1").map_err(|e| io("live", e))?;
        let dev = std::fs::read_to_string(dir.join("dev_name")).map_err(|e| io("dev_name", e))?;
        let chip =
            std::fs::read_to_string(bank.join("chip_name")).map_err(|e| io("chip_name", e))?;
        let sysfs = Path::new("/sys/devices/platform")
            .join(dev.trim())
            .join(chip.trim());
        Ok(Self { dir, sysfs })
    }

    fn value(&self, line: u32) -> bool {
        let v = std::fs::read_to_string(self.sysfs.join(format!("sim_gpio{line}/value")))
            .unwrap_or_default();
        v.trim() == "1"
    }

    fn pull(&self, line: u32, up: bool) {
        let pull = if up { "pull-up" } else { "pull-down" };
        std::fs::write(self.sysfs.join(format!("sim_gpio{line}/pull")), pull).expect("set pull");
    }
}

impl Drop for SimChip {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("live"), "0");
        let _ = std::fs::remove_dir(self.dir.join("gpio-bank0"));
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// LEDs written through gpiocdev reach the chip's lines, found by label; the button line reads
/// the simulated pull and drives the debouncer.
#[test]
fn cdev_backend_drives_a_gpio_sim_chip() {
    let chip = match SimChip::create() {
        Ok(chip) => chip,
        Err(reason) => {
            println!("SKIPPED cdev_backend_drives_a_gpio_sim_chip: {reason}");
            return;
        }
    };
    let map = PinMap {
        chip: LABEL.into(),
        act_led: None,
        ..PinMap::default()
    };
    let opened = open_pins(BackendKind::Cdev, &map, &SimBoard::new(), Path::new("/dev"))
        .expect("open gpio-sim lines");
    let mut player = LedPlayer::new(opened.leds, false);
    player
        .show_now(
            LedFrame::ALL_OFF
                .with(Led::Box, LedLook::On)
                .with(Led::Attention, LedLook::On),
            Duration::ZERO,
        )
        .expect("write");
    let lit: Vec<bool> = map.leds.iter().map(|l| chip.value(*l)).collect();
    assert_eq!(lit, [false, true, false, true]);
    player
        .show_now(LedFrame::STOPPED, Duration::from_secs(1))
        .expect("write");
    assert!(chip.value(map.leds[0]) && !chip.value(map.leds[1]));

    let mut button = opened.button.expect("button line");
    let line = map.button.expect("button gpio");
    chip.pull(line, true);
    assert!(button.is_high().expect("read"));
    let mut tracker = ButtonTracker::new(ButtonConfig::default());
    let ms = Duration::from_millis;
    tracker.sample(!button.is_high().expect("read"), ms(0));
    tracker.sample(!button.is_high().expect("read"), ms(100));
    chip.pull(line, false);
    tracker.sample(!button.is_high().expect("read"), ms(200));
    tracker.sample(!button.is_high().expect("read"), ms(300));
    chip.pull(line, true);
    tracker.sample(!button.is_high().expect("read"), ms(400));
    let event = tracker.sample(!button.is_high().expect("read"), ms(500));
    assert_eq!(event, Some(boxidr_board::ButtonEvent::ShortPress));
}

/// The firmware's own start-up path on a real chip chosen by the configuration (label and
/// line offsets, no button), the way QEMU's PL061 is used: the LEDs follow the frames.
#[test]
fn start_drives_configured_lines_on_a_gpio_sim_chip() {
    let chip = match SimChip::create() {
        Ok(chip) => chip,
        Err(reason) => {
            println!("SKIPPED start_drives_configured_lines_on_a_gpio_sim_chip: {reason}");
            return;
        }
    };
    let dt = tempfile::tempdir().expect("tempdir");
    std::fs::write(dt.path().join("compatible"), b"linux,dummy-virt\0").expect("write");
    let cfg = boxidr_board::BoardConfig {
        backend: boxidr_board::BackendChoice::Cdev,
        pins: boxidr_board::PinOverrides {
            chip: Some(LABEL.into()),
            leds: Some([0, 1, 2, 4]),
            button: Some(None),
            act_led: Some(None),
            ..boxidr_board::PinOverrides::default()
        },
        paths: boxidr_board::SystemPaths {
            dt_model: dt.path().join("model"),
            dt_compatible: dt.path().join("compatible"),
            ..boxidr_board::SystemPaths::default()
        },
        ..boxidr_board::BoardConfig::default()
    };
    let started = boxidr_board::start(&cfg, Box::new(|_| {})).expect("start");
    assert_eq!(started.kind, BackendKind::Cdev, "{:?}", started.problem);
    started.handle.show(
        LedFrame::ALL_OFF
            .with(Led::Box, LedLook::On)
            .with(Led::Attention, LedLook::On),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while [0, 1, 2, 4].map(|l| chip.value(l)) != [false, true, false, true] {
        assert!(std::time::Instant::now() < deadline, "lines did not follow");
        std::thread::sleep(Duration::from_millis(10));
    }
    started.handle.stop();
    assert!(chip.value(0) && !chip.value(1), "STOPPED: SYSTEM steady on");
}
