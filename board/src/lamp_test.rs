//! `boxidr leds --test`: lights every LED in turn, then every look, for assembly checks.
//!
//! Runs on any backend through [`LedPlayer`], with the clock and the sleep passed in, so it runs
//! instantly on the simulated board in CI.

use std::time::Duration;

use boxidr_model::{Led, LedFrame, LedLook};
use embedded_hal::digital::OutputPin;

use crate::backend::{BackendChoice, BackendKind, gpiomem_present, open_pins, resolve_backend};
use crate::clock::{Clock, ManualClock, MonotonicClock};
use crate::pins::{BoardModel, PinMap};
use crate::player::{LedPlayer, PinWriteError};
use crate::sim::SimBoard;
use crate::start::{BoardConfig, BoardProblem, resolve_pins};

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

/// Plays `steps` on `player`, calling `announce` as each starts (its first levels already
/// written) and `sleep` to wait. Returns after the last step with the LEDs dark.
pub fn run_lamp_test<P: OutputPin>(
    player: &mut LedPlayer<P>,
    steps: &[LampStep],
    clock: &dyn Clock,
    sleep: &mut dyn FnMut(Duration),
    announce: &mut dyn FnMut(&LampStep),
) -> Result<(), PinWriteError<P::Error>> {
    for step in steps {
        let start = clock.now();
        let end = start + step.duration;
        player.show(step.frame, start);
        player.update(start)?;
        announce(step);
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

/// What `boxidr leds --test` ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedsTestReport {
    /// The backend whose LEDs were cycled.
    pub kind: BackendKind,
    /// The detected board, if any.
    pub board: Option<BoardModel>,
    /// Steps played.
    pub steps: usize,
}

/// `boxidr leds --test`: cycles every LED on the configured backend and tells the person at the
/// box what to look for, one line per step. Unlike [`start`](crate::start()), a GPIO problem is an
/// error here, since checking the hardware is the point. On the simulated backend each line also
/// carries the rendered LEDs, and with `realtime == false` it runs without waiting (CI).
pub fn leds_test(
    cfg: &BoardConfig,
    realtime: bool,
    out: &mut dyn FnMut(&str),
) -> Result<LedsTestReport, BoardProblem> {
    let steps = lamp_test_steps();
    let total = steps.len();
    let line = |i: usize, step: &LampStep| format!("[{}/{total}] {}", i + 1, step.description);
    if cfg.backend == BackendChoice::Simulated {
        let manual = ManualClock::new();
        let real = MonotonicClock::new();
        let clock: &dyn Clock = if realtime { &real } else { &manual };
        let sim = SimBoard::with_clock(if realtime {
            std::sync::Arc::new(real)
        } else {
            std::sync::Arc::new(manual.clone())
        });
        let mut player = LedPlayer::new(sim.leds(), false);
        let mut i = 0;
        let mut sleep = |d: Duration| {
            if realtime {
                std::thread::sleep(d)
            } else {
                manual.advance(d)
            }
        };
        if let Err(e) = run_lamp_test(&mut player, &steps, clock, &mut sleep, &mut |step| {
            out(&format!("{}  {}", line(i, step), sim.render()));
            i += 1;
        }) {
            match e.source {}
        }
        return Ok(LedsTestReport {
            kind: BackendKind::Simulated,
            board: None,
            steps: total,
        });
    }
    let (board, map) = resolve_pins(cfg);
    let map: PinMap = map?;
    let kind = resolve_backend(cfg.backend, gpiomem_present(&cfg.paths.dev_dir))?;
    let opened = open_pins(kind, &map, &SimBoard::new(), &cfg.paths.dev_dir)?;
    let clock = MonotonicClock::new();
    let mut player = LedPlayer::new(opened.leds, map.led_active_low);
    let mut i = 0;
    run_lamp_test(
        &mut player,
        &steps,
        &clock,
        &mut std::thread::sleep,
        &mut |step| {
            out(&line(i, step));
            i += 1;
        },
    )
    .map_err(|e| BoardProblem::Write(format!("writing the {} LED failed: {}", e.led, e.source)))?;
    Ok(LedsTestReport {
        kind,
        board,
        steps: total,
    })
}
