//! Exact pin transitions and timings of every look, played under a fake clock.

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use boxidr_board::pattern::Pattern;
use boxidr_board::{Clock, LedPlayer, ManualClock, SimBoard};
use boxidr_model::{Led, LedFrame, LedLook};
use embedded_hal::digital::{ErrorType, OutputPin};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Every write (not just changes), with the fake time it happened at.
#[derive(Debug, Clone)]
struct RecordingPin {
    clock: ManualClock,
    log: Rc<RefCell<Vec<(Duration, bool)>>>,
}

impl RecordingPin {
    fn new(clock: &ManualClock) -> Self {
        Self {
            clock: clock.clone(),
            log: Rc::default(),
        }
    }
    fn writes(&self) -> Vec<(u64, bool)> {
        self.log
            .borrow()
            .iter()
            .map(|(t, l)| (u64::try_from(t.as_millis()).unwrap_or(u64::MAX), *l))
            .collect()
    }
}

impl ErrorType for RecordingPin {
    type Error = Infallible;
}

impl OutputPin for RecordingPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.log.borrow_mut().push((self.clock.now(), false));
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.log.borrow_mut().push((self.clock.now(), true));
        Ok(())
    }
}

/// Runs the player like the LED thread does: update, then jump to the deadline it returned.
fn play<P: OutputPin>(player: &mut LedPlayer<P>, clock: &ManualClock, until: Duration)
where
    P::Error: std::fmt::Debug,
{
    loop {
        let next = player.update(clock.now()).expect("pin write");
        match next {
            Some(t) if t <= until => clock.advance_to(t),
            _ => break,
        }
    }
}

fn pins(clock: &ManualClock) -> [RecordingPin; 4] {
    [(); 4].map(|()| RecordingPin::new(clock))
}

/// Expected writes of `look` on `led` over `[0, until]`, from the documented rhythm table.
fn expected(cycle: &[(bool, u64)], offset: u64, until: u64) -> Vec<(u64, bool)> {
    let period: u64 = cycle.iter().map(|(_, d)| d).sum();
    let level_at = |t: u64| {
        let mut x = (t + offset) % period;
        for (on, d) in cycle {
            if x < *d {
                return *on;
            }
            x -= d;
        }
        unreachable!()
    };
    let mut out = vec![(0, level_at(0))];
    for t in 1..=until {
        if level_at(t) != level_at(t - 1) {
            out.push((t, level_at(t)));
        }
    }
    out
}

/// Each look produces exactly the documented transitions, at the exact milliseconds, with one
/// write per transition and none in between.
#[test]
fn every_look_has_exact_transitions() {
    type Case = (LedLook, Led, Vec<(bool, u64)>, u64);
    let cases: Vec<Case> = vec![
        (
            LedLook::SlowBlink,
            Led::Box,
            vec![(true, 1000), (false, 1000)],
            0,
        ),
        (
            LedLook::FastBlink,
            Led::InsightIdr,
            vec![(true, 150), (false, 150)],
            0,
        ),
        (
            LedLook::Heartbeat,
            Led::System,
            vec![(true, 100), (false, 150), (true, 100), (false, 850)],
            0,
        ),
        (
            LedLook::Code(2),
            Led::Attention,
            vec![(true, 300), (false, 300), (true, 300), (false, 1800)],
            0,
        ),
        (
            LedLook::Sweep,
            Led::System,
            vec![(true, 150), (false, 450)],
            0,
        ),
        (
            LedLook::Sweep,
            Led::Box,
            vec![(true, 150), (false, 450)],
            450,
        ),
        (
            LedLook::Sweep,
            Led::Attention,
            vec![(true, 150), (false, 450)],
            150,
        ),
        (
            LedLook::WigWag,
            Led::System,
            vec![(true, 125), (false, 125)],
            0,
        ),
        (
            LedLook::WigWag,
            Led::Box,
            vec![(false, 125), (true, 125)],
            0,
        ),
    ];
    for (look, led, cycle, offset) in cases {
        let clock = ManualClock::new();
        let pins = pins(&clock);
        let probe = pins[led.index()].clone();
        let mut player = LedPlayer::new(pins, false);
        player.show(LedFrame::single(led, look), clock.now());
        play(&mut player, &clock, ms(5000));
        assert_eq!(
            probe.writes(),
            expected(&cycle, offset, 5000),
            "{look:?} on {led:?}"
        );
    }
}

/// Steady looks write once and then never again.
#[test]
fn steady_looks_write_once() {
    let clock = ManualClock::new();
    let pins = pins(&clock);
    let probes = pins.clone();
    let mut player = LedPlayer::new(pins, false);
    player.show(LedFrame::STOPPED, clock.now());
    assert_eq!(player.update(clock.now()).unwrap(), None);
    clock.advance(ms(60_000));
    assert_eq!(player.update(clock.now()).unwrap(), None);
    assert_eq!(probes[0].writes(), vec![(0, true)]);
    assert_eq!(probes[3].writes(), vec![(0, false)]);
}

/// Active-low wiring inverts the pin level, not the meaning.
#[test]
fn active_low_inverts() {
    let clock = ManualClock::new();
    let pins = pins(&clock);
    let probe = pins[0].clone();
    let mut player = LedPlayer::new(pins, true);
    player
        .show_now(LedFrame::single(Led::System, LedLook::On), clock.now())
        .unwrap();
    assert_eq!(probe.writes(), vec![(0, false)]);
    assert_eq!(player.levels(), [true, false, false, false]);
}

/// Changing one LED's look restarts only that LED; the heartbeat keeps its rhythm.
#[test]
fn unchanged_leds_keep_their_phase() {
    let clock = ManualClock::new();
    let pins = pins(&clock);
    let (system, bx) = (pins[0].clone(), pins[1].clone());
    let mut player = LedPlayer::new(pins, false);
    player.show(
        LedFrame::single(Led::System, LedLook::Heartbeat),
        clock.now(),
    );
    play(&mut player, &clock, ms(730));
    clock.advance_to(ms(730));
    player.show(
        LedFrame::single(Led::System, LedLook::Heartbeat).with(Led::Box, LedLook::FastBlink),
        clock.now(),
    );
    play(&mut player, &clock, ms(1400));
    let hb = [(true, 100), (false, 150), (true, 100), (false, 850)];
    assert_eq!(system.writes(), expected(&hb, 0, 1400));
    let fast: Vec<(u64, bool)> = bx.writes().into_iter().filter(|(t, _)| *t >= 730).collect();
    assert_eq!(
        fast,
        vec![
            (730, true),
            (880, false),
            (1030, true),
            (1180, false),
            (1330, true)
        ]
    );
}

/// The same frame on the simulated board: transitions are recorded with their timestamps and the
/// terminal line shows the current levels.
#[test]
fn simulated_board_records_and_renders() {
    let clock = ManualClock::new();
    let board = SimBoard::with_clock(std::sync::Arc::new(clock.clone()));
    let mut player = LedPlayer::new(board.leds(), false);
    player.show(
        LedFrame::single(Led::Box, LedLook::SlowBlink).with(Led::System, LedLook::On),
        clock.now(),
    );
    play(&mut player, &clock, ms(2500));
    assert_eq!(
        board.transitions_of(Led::Box),
        vec![(ms(0), true), (ms(1000), false), (ms(2000), true)]
    );
    assert_eq!(board.transitions_of(Led::Attention), vec![(ms(0), false)]);
    assert_eq!(board.render(), "SYSTEM ● BOX ● INSIGHTIDR ○ ATTENTION ○");
    assert_eq!(
        Pattern::for_look(LedLook::SlowBlink, Led::Box).period(),
        ms(2000)
    );
}
