//! The status-LED vocabulary: which LEDs the box has and the looks each one can show.
//!
//! Shared by the health model (which decides what the box should say), the board crate (which
//! plays it on GPIO pins) and the status page (which draws it). Pure data, no timing loop here.
//!
//! # Reading the LEDs without colour
//!
//! Four LEDs sit in a row, always in this order, left to right: **SYSTEM · BOX · INSIGHTIDR ·
//! ATTENTION**. Meaning comes from the *position* and the *rhythm*; the suggested colours (green,
//! blue, blue, red) are only a hint, so a person with red-green colour blindness reads the same
//! thing. No meaning ever depends on telling two colours apart.
//!
//! # Rhythms
//!
//! | Look | Rhythm (one cycle) | Reads as |
//! |---|---|---|
//! | [`LedLook::Off`] | dark | nothing to say / not configured |
//! | [`LedLook::On`] | steady light | fine (links) / action needed (ATTENTION) |
//! | [`LedLook::SlowBlink`] | 1 s on, 1 s off | working on it: degraded, retrying, throttled, waiting |
//! | [`LedLook::FastBlink`] | 150 ms on, 150 ms off | failing: it will not get better by itself |
//! | [`LedLook::Heartbeat`] | 100 ms on, 150 ms off, 100 ms on, 850 ms off | the firmware is alive |
//! | [`LedLook::Code`]`(n)` | n flashes of 300 ms on / 300 ms off, then 1.5 s dark | problem number n (status summary) |
//! | [`LedLook::Sweep`] | each LED 150 ms in turn, left to right | starting up (board-wide) |
//! | [`LedLook::WigWag`] | odd and even positions alternate, 125 ms each | factory reset confirmed (board-wide) |
//!
//! `Sweep` and `WigWag` take their phase from the LED's position, so they only make sense when all
//! four LEDs show them at once (see [`LedFrame::BOOT`], [`LedFrame::FACTORY_RESET_CONFIRMED`]).
//! The health mapping uses only `Off`, `On`, `SlowBlink`, `FastBlink`, `Heartbeat` and `Code`, and
//! never shows `FastBlink` on all four LEDs at once, so the board-wide looks stay unmistakable.
//!
//! # Intended meaning per LED (the "sticker")
//!
//! | LED (position) | Off | On | SlowBlink | FastBlink | Heartbeat | Code(n) |
//! |---|---|---|---|---|---|---|
//! | SYSTEM (1, green) | no power, or firmware not running | firmware stopped (a steady light never means "fine" here) | — | — | firmware alive | — |
//! | BOX (2) | Box not configured | Box events flowing | degraded: retrying, rate-limited, catching up | failing: auth revoked, unreachable for long | — | — |
//! | INSIGHTIDR (3) | InsightIDR not configured | delivering to InsightIDR | degraded: retrying, verifier not yet confirmed | failing: rejected, unreachable for long | — | — |
//! | ATTENTION (4, red) | nothing needs a person | action needed (press the button for which) | needs attention soon (e.g. queue filling) | urgent (e.g. storage fault, queue full) | — | after a short button press: which problem, see [`AttentionCode`] |
//!
//! Whole-board frames: [`LedFrame::BOOT`] while starting, [`LedFrame::STOPPED`] after a clean
//! stop, [`LedFrame::FAULT`] when the LED driver died of a panic, [`LedFrame::reset_hold`] while the
//! reset button is held, [`LedFrame::FACTORY_RESET_CONFIRMED`] once the long press is accepted.
//! The SYSTEM heartbeat is the only proof of life: a hung firmware freezes it (on or off).

use serde::{Deserialize, Serialize};

/// One of the four status LEDs, named by what it reports. Declared in physical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Led {
    /// Position 1 (suggested green): the firmware itself.
    System,
    /// Position 2: the link to Box (events poller, users sync, authorisation).
    Box,
    /// Position 3: the link to InsightIDR (Collector and Log Search sinks, verifier).
    InsightIdr,
    /// Position 4 (suggested red): something needs a person.
    Attention,
}

impl Led {
    /// Every LED in physical order, left to right.
    pub const ALL: [Self; 4] = [Self::System, Self::Box, Self::InsightIdr, Self::Attention];

    /// Zero-based position in the row, left to right.
    pub const fn index(self) -> usize {
        match self {
            Self::System => 0,
            Self::Box => 1,
            Self::InsightIdr => 2,
            Self::Attention => 3,
        }
    }

    /// Label printed next to the LED on the case.
    pub const fn label(self) -> &'static str {
        match self {
            Self::System => "SYSTEM",
            Self::Box => "BOX",
            Self::InsightIdr => "INSIGHTIDR",
            Self::Attention => "ATTENTION",
        }
    }
}

impl std::fmt::Display for Led {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The look (rhythm) of one LED. Timings are in the module documentation and are what the board
/// plays; the status page may draw them the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedLook {
    /// Dark.
    #[default]
    Off,
    /// Steady light.
    On,
    /// 1 s on, 1 s off: degraded, retrying, waiting.
    SlowBlink,
    /// 150 ms on, 150 ms off: failing.
    FastBlink,
    /// Double flash once every 1.2 s: the firmware is alive.
    Heartbeat,
    /// `n` flashes (300 ms on, 300 ms off) then 1.5 s dark, repeated. `n` is shown clamped to
    /// `1..=`[`LedLook::MAX_CODE`]; use [`LedLook::code`] to build it.
    Code(u8),
    /// Running light, one LED at a time in position order (board-wide boot animation).
    Sweep,
    /// Odd and even positions alternate quickly (board-wide factory-reset confirmation).
    WigWag,
}

impl LedLook {
    /// Largest flash count of [`LedLook::Code`]; more flashes cannot be counted at a glance.
    pub const MAX_CODE: u8 = 9;

    /// A blink code of `n` flashes, clamped to `1..=MAX_CODE`.
    pub const fn code(n: u8) -> Self {
        Self::Code(if n == 0 {
            1
        } else if n > Self::MAX_CODE {
            Self::MAX_CODE
        } else {
            n
        })
    }

    /// Whether this look only makes sense when every LED shows it at once.
    pub const fn is_board_wide(self) -> bool {
        matches!(self, Self::Sweep | Self::WigWag)
    }
}

/// Problem numbers flashed by the ATTENTION LED in the status summary (after a short press of the
/// reset button), highest priority first. The health model picks the most urgent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionCode {
    /// 1 flash: storage fault (the queue cannot be written).
    StorageFault = 1,
    /// 2 flashes: setup needed (open the setup page).
    SetupNeeded = 2,
    /// 3 flashes: Box authorisation revoked or expired: authorise again on the setup page.
    ReauthorisationNeeded = 3,
    /// 4 flashes: the clock is not synchronised (no network time yet).
    ClockNotSynchronised = 4,
    /// 5 flashes: the queue is nearly full (InsightIDR is not taking events fast enough).
    QueueNearlyFull = 5,
    /// 6 flashes: no GPIO: the LEDs themselves could not be driven (seen on the status page only).
    LedsUnavailable = 6,
    /// 7 flashes: data set aside: Box sent data the box could not read (the stream was
    /// re-anchored, or an `admin_logs` window is stuck), or InsightIDR refused records for
    /// good (kept as dead letters on the Maintenance page); see the status page.
    DataSetAside = 7,
}

impl AttentionCode {
    /// Every code, in flash-count order.
    pub const ALL: [Self; 7] = [
        Self::StorageFault,
        Self::SetupNeeded,
        Self::ReauthorisationNeeded,
        Self::ClockNotSynchronised,
        Self::QueueNearlyFull,
        Self::LedsUnavailable,
        Self::DataSetAside,
    ];

    /// Number of flashes.
    pub const fn flashes(self) -> u8 {
        self as u8
    }

    /// The look that flashes this code.
    pub const fn look(self) -> LedLook {
        LedLook::Code(self.flashes())
    }
}

/// The look of every LED at once: what the board shows at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedFrame {
    /// Position 1.
    pub system: LedLook,
    /// Position 2.
    #[serde(rename = "box")]
    pub box_link: LedLook,
    /// Position 3.
    pub insightidr: LedLook,
    /// Position 4.
    pub attention: LedLook,
}

impl LedFrame {
    /// Every LED dark.
    pub const ALL_OFF: Self = Self::uniform(LedLook::Off);

    /// Starting up (before the first health verdict): a running light.
    pub const BOOT: Self = Self::uniform(LedLook::Sweep);

    /// The firmware stopped cleanly: SYSTEM steady on (no heartbeat), everything else dark.
    pub const STOPPED: Self = Self {
        system: LedLook::On,
        box_link: LedLook::Off,
        insightidr: LedLook::Off,
        attention: LedLook::Off,
    };

    /// The LED driver stopped because of a panic: SYSTEM and ATTENTION steady on.
    pub const FAULT: Self = Self {
        system: LedLook::On,
        box_link: LedLook::Off,
        insightidr: LedLook::Off,
        attention: LedLook::On,
    };

    /// The firmware refused to start and will not be restarted (exit 78: a configuration it
    /// cannot use, or a database written by newer firmware): ATTENTION steady on, the rest dark.
    /// Steady, so it stays readable after the process has exited.
    pub const REFUSED: Self = Self {
        system: LedLook::Off,
        box_link: LedLook::Off,
        insightidr: LedLook::Off,
        attention: LedLook::On,
    };

    /// The reset button was held long enough: the factory reset is requested.
    pub const FACTORY_RESET_CONFIRMED: Self = Self::uniform(LedLook::WigWag);

    /// Every LED on: the lamp test step of `boxidr leds --test`.
    pub const ALL_ON: Self = Self::uniform(LedLook::On);

    /// The same look on every LED.
    pub const fn uniform(look: LedLook) -> Self {
        Self {
            system: look,
            box_link: look,
            insightidr: look,
            attention: look,
        }
    }

    /// Feedback while the reset button is held: the first `lit` LEDs (in position order, at most
    /// four) steady on, the rest dark, like a progress bar filling up towards the factory reset.
    pub const fn reset_hold(lit: usize) -> Self {
        const fn nth(lit: usize, index: usize) -> LedLook {
            if index < lit {
                LedLook::On
            } else {
                LedLook::Off
            }
        }
        Self {
            system: nth(lit, 0),
            box_link: nth(lit, 1),
            insightidr: nth(lit, 2),
            attention: nth(lit, 3),
        }
    }

    /// Only `led` shows `look`, the others are dark.
    pub fn single(led: Led, look: LedLook) -> Self {
        Self::ALL_OFF.with(led, look)
    }

    /// The look of one LED.
    pub const fn look(&self, led: Led) -> LedLook {
        match led {
            Led::System => self.system,
            Led::Box => self.box_link,
            Led::InsightIdr => self.insightidr,
            Led::Attention => self.attention,
        }
    }

    /// Sets the look of one LED.
    pub fn set(&mut self, led: Led, look: LedLook) {
        match led {
            Led::System => self.system = look,
            Led::Box => self.box_link = look,
            Led::InsightIdr => self.insightidr = look,
            Led::Attention => self.attention = look,
        }
    }

    /// This frame with one LED changed.
    #[must_use]
    pub fn with(mut self, led: Led, look: LedLook) -> Self {
        self.set(led, look);
        self
    }

    /// Every LED with its look, in position order.
    pub fn iter(&self) -> impl Iterator<Item = (Led, LedLook)> + '_ {
        Led::ALL.into_iter().map(|led| (led, self.look(led)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions follow declaration order and `ALL`, so the physical row and the enum agree.
    #[test]
    fn positions_are_the_physical_order() {
        for (i, led) in Led::ALL.into_iter().enumerate() {
            assert_eq!(led.index(), i);
        }
        assert!(Led::System < Led::Attention);
    }

    /// A frame serialises with one readable field per LED, and rejects unknown LEDs.
    #[test]
    fn frame_serialises_for_the_status_page() {
        let frame = LedFrame {
            system: LedLook::Heartbeat,
            box_link: LedLook::On,
            insightidr: LedLook::SlowBlink,
            attention: AttentionCode::ClockNotSynchronised.look(),
        };
        let json = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            json,
            r#"{"system":"heartbeat","box":"on","insightidr":"slow_blink","attention":{"code":4}}"#
        );
        assert_eq!(serde_json::from_str::<LedFrame>(&json).unwrap(), frame);
        assert!(serde_json::from_str::<LedFrame>(r#"{"power":"on"}"#).is_err());
    }

    /// Blink codes are clamped to what a person can count.
    #[test]
    fn codes_are_clamped() {
        assert_eq!(LedLook::code(0), LedLook::Code(1));
        assert_eq!(LedLook::code(200), LedLook::Code(LedLook::MAX_CODE));
        let flashes: Vec<u8> = AttentionCode::ALL.iter().map(|c| c.flashes()).collect();
        assert_eq!(flashes, [1, 2, 3, 4, 5, 6, 7]);
    }

    /// The hold feedback fills up in position order and saturates at four.
    #[test]
    fn reset_hold_fills_in_order() {
        assert_eq!(LedFrame::reset_hold(0), LedFrame::ALL_OFF);
        assert_eq!(
            LedFrame::reset_hold(2),
            LedFrame::ALL_OFF
                .with(Led::System, LedLook::On)
                .with(Led::Box, LedLook::On)
        );
        assert_eq!(LedFrame::reset_hold(9), LedFrame::ALL_ON);
        let set = LedFrame::single(Led::Attention, LedLook::FastBlink);
        assert_eq!(set.iter().filter(|(_, l)| *l != LedLook::Off).count(), 1);
    }
}
