//! `boxidr leds --test`: lights every LED in turn, then every look, for assembly checks.
//!
//! Runs on any backend through [`LedPlayer`], with the clock and the sleep passed in, so it runs
//! instantly on the simulated board in CI.

use std::time::Duration;

use boxidr_model::{Led, LedFrame, LedLook};
use embedded_hal::digital::OutputPin;

use crate::clock::Clock;
use crate::player::{LedPlayer, PinWriteError};

/// One step of the lamp test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LampStep {
    /// What the person checking the box should see.
    pub description: String,
    /// The frame shown.
    pub frame: LedFrame,
    /// How long.
    pub duration: Duration,
}

/// The lamp-test sequence: each LED alone (position order), all on, the rhythms, all off.
pub fn lamp_test_steps() -> Vec<LampStep> {
    let step = |description: String, frame, ms| LampStep {
        description,
        frame,
        duration: Duration::from_millis(ms),
    };
    let mut steps: Vec<LampStep> = Led::ALL
        .into_iter()
        .map(|led| {
            step(
                format!("only {} (position {}) is lit", led.label(), led.index() + 1),
                LedFrame::single(led, LedLook::On),
                1500,
            )
        })
        .collect();
    steps.push(step("all four LEDs are lit".into(), LedFrame::ALL_ON, 2000));
    steps.push(step(
        "all four blink slowly, together".into(),
        LedFrame::uniform(LedLook::SlowBlink),
        4000,
    ));
    steps.push(step(
        "all four blink fast, together".into(),
        LedFrame::uniform(LedLook::FastBlink),
        1500,
    ));
    steps.push(step(
        "SYSTEM shows the heartbeat (double flash)".into(),
        LedFrame::single(Led::System, LedLook::Heartbeat),
        2400,
    ));
    steps.push(step(
        "ATTENTION flashes three times, then pauses".into(),
        LedFrame::single(Led::Attention, LedLook::Code(3)),
        3300,
    ));
    steps.push(step(
        "a light runs left to right (boot pattern)".into(),
        LedFrame::BOOT,
        2400,
    ));
    steps.push(step(
        "outer and inner pairs alternate (factory-reset confirmation)".into(),
        LedFrame::FACTORY_RESET_CONFIRMED,
        1500,
    ));
    steps.push(step("all LEDs are dark".into(), LedFrame::ALL_OFF, 500));
    steps
}

/// Plays `steps` on `player`, calling `announce` before each and `sleep` to wait. Returns after
/// the last step with the LEDs dark.
pub fn run_lamp_test<P: OutputPin>(
    player: &mut LedPlayer<P>,
    steps: &[LampStep],
    clock: &dyn Clock,
    sleep: &mut dyn FnMut(Duration),
    announce: &mut dyn FnMut(&LampStep),
) -> Result<(), PinWriteError<P::Error>> {
    for step in steps {
        announce(step);
        let start = clock.now();
        let end = start + step.duration;
        player.show(step.frame, start);
        loop {
            let now = clock.now();
            if now >= end {
                break;
            }
            let next = player.update(now)?.map_or(end, |t| t.min(end));
            sleep(next.saturating_sub(clock.now()));
        }
    }
    player.show_now(LedFrame::ALL_OFF, clock.now())
}
