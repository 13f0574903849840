//! The simulated board: four LEDs and a button in memory, for development, the demo and tests.
//!
//! Every level change is recorded with its timestamp from the board's [`Clock`], the current
//! levels can be read at any time (status page) and rendered as one terminal line (demo).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use boxidr_model::Led;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

use crate::clock::{Clock, MonotonicClock};

/// Transitions kept by the recorder; older ones are dropped first.
pub const MAX_RECORDED: usize = 4096;

/// One recorded level change of a simulated LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Board clock time of the write.
    pub at: Duration,
    /// Which LED.
    pub led: Led,
    /// Lit after the write.
    pub on: bool,
}

#[derive(Debug, Default)]
struct SimState {
    levels: [bool; 4],
    written: [bool; 4],
    transitions: VecDeque<Transition>,
    button_pressed: bool,
}

/// A simulated board; clones share the same LEDs and button.
#[derive(Debug, Clone)]
pub struct SimBoard {
    state: Arc<Mutex<SimState>>,
    clock: Arc<dyn Clock>,
}

impl SimBoard {
    /// A board timestamping with the real monotonic clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(MonotonicClock::new()))
    }

    /// A board timestamping with `clock` (e.g. a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::default(),
            clock,
        }
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding this lock cannot leave the plain data inconsistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The output pin of one LED. Active high: a high level lights it.
    pub fn led(&self, led: Led) -> SimPin {
        SimPin {
            board: self.clone(),
            led,
        }
    }

    /// The four LED pins in [`Led::ALL`] order.
    pub fn leds(&self) -> [SimPin; 4] {
        Led::ALL.map(|led| self.led(led))
    }

    /// The reset button's input pin. Active low, like a button to ground with a pull-up.
    pub fn button(&self) -> SimButton {
        SimButton {
            board: self.clone(),
        }
    }

    /// Presses (`true`) or releases the simulated reset button.
    pub fn set_button(&self, pressed: bool) {
        self.state().button_pressed = pressed;
    }

    /// Which LEDs are lit now, in [`Led::ALL`] order.
    pub fn levels(&self) -> [bool; 4] {
        self.state().levels
    }

    /// Whether an LED is lit now.
    pub fn is_on(&self, led: Led) -> bool {
        self.levels()[led.index()]
    }

    /// Recorded level changes, oldest first (writes that did not change the level are not kept).
    pub fn transitions(&self) -> Vec<Transition> {
        self.state().transitions.iter().copied().collect()
    }

    /// Recorded level changes of one LED.
    pub fn transitions_of(&self, led: Led) -> Vec<(Duration, bool)> {
        self.state()
            .transitions
            .iter()
            .filter(|t| t.led == led)
            .map(|t| (t.at, t.on))
            .collect()
    }

    /// Forgets the recorded transitions (levels stay).
    pub fn clear_transitions(&self) {
        self.state().transitions.clear();
    }

    /// One terminal line with the four LEDs, e.g. `SYSTEM ● BOX ● INSIGHTIDR ○ ATTENTION ○`.
    pub fn render(&self) -> String {
        render_levels(self.levels())
    }

    fn write(&self, led: Led, on: bool) {
        let at = self.clock.now();
        let mut state = self.state();
        let i = led.index();
        let first = !state.written[i];
        state.written[i] = true;
        if first || state.levels[i] != on {
            state.levels[i] = on;
            if state.transitions.len() == MAX_RECORDED {
                state.transitions.pop_front();
            }
            state.transitions.push_back(Transition { at, led, on });
        }
    }
}

impl Default for SimBoard {
    fn default() -> Self {
        Self::new()
    }
}

/// Renders lit (`●`) and dark (`○`) LEDs with their labels on one line.
pub fn render_levels(levels: [bool; 4]) -> String {
    let mut line = String::new();
    for led in Led::ALL {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(led.label());
        line.push(' ');
        line.push(if levels[led.index()] { '●' } else { '○' });
    }
    line
}

/// Output pin of one simulated LED.
#[derive(Debug, Clone)]
pub struct SimPin {
    board: SimBoard,
    led: Led,
}

impl ErrorType for SimPin {
    type Error = Infallible;
}

impl OutputPin for SimPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.board.write(self.led, false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.board.write(self.led, true);
        Ok(())
    }
}

/// Input pin of the simulated reset button (low while pressed).
#[derive(Debug, Clone)]
pub struct SimButton {
    board: SimBoard,
}

impl ErrorType for SimButton {
    type Error = Infallible;
}

impl InputPin for SimButton {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.board.state().button_pressed)
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(self.board.state().button_pressed)
    }
}
