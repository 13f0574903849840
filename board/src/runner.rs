//! The LED thread: owns the pins and the button, plays the current frame, reports button events.
//!
//! The firmware talks to it through a [`LedHandle`]: [`LedHandle::show`] sets the live frame
//! (latest wins, never blocks), [`LedHandle::set_summary`] the frame shown for a while after a short
//! press, [`LedHandle::status`] reads what the LEDs show now. Defined end states:
//! - stopped through [`LedHandle::stop`] or by dropping the handle: [`LedFrame::STOPPED`]
//!   (SYSTEM steady on, the rest dark);
//! - the thread panicked (e.g. in the button callback): [`LedFrame::FAULT`] (SYSTEM and ATTENTION
//!   steady on), written by a drop guard while unwinding. A process killed outright (SIGKILL,
//!   power loss) leaves the pins as they were, and the missing heartbeat tells.
//!
//! The thread runs on its own, so it cannot tell by itself that the rest of the firmware hung:
//! the firmware must call [`LedHandle::show`] regularly (every few seconds, same frame or not).
//! When it has not for [`RunnerConfig::liveness_timeout`], SYSTEM shows steady on instead of its
//! heartbeat.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use boxidr_model::{Led, LedFrame, LedLook};
use embedded_hal::digital::{InputPin, OutputPin};

use crate::button::{ButtonConfig, ButtonEvent, ButtonTracker};
use crate::clock::Clock;
use crate::player::LedPlayer;

/// Longest the thread sleeps without looking at its inbox (bounds the cost of a fake clock).
const MAX_PARK: Duration = Duration::from_millis(250);

/// Wiring facts the runner needs besides the pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// LEDs light on a low level (wired to 3.3 V through the resistor).
    pub led_active_low: bool,
    /// The button reads high when pressed (wired to 3.3 V, pull-down). Default: pressed = low.
    pub button_active_high: bool,
    /// Button timings.
    pub button: ButtonConfig,
    /// If [`LedHandle::show`] is not called for this long, the firmware is taken as hung and
    /// SYSTEM stops its heartbeat (steady on), as the sticker promises. `None`: never.
    pub liveness_timeout: Option<Duration>,
}

/// Default [`RunnerConfig::liveness_timeout`]: the health task should call
/// [`LedHandle::show`] at least every few seconds, even when nothing changed.
pub const DEFAULT_LIVENESS_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            led_active_low: false,
            button_active_high: false,
            button: ButtonConfig::default(),
            liveness_timeout: Some(DEFAULT_LIVENESS_TIMEOUT),
        }
    }
}

/// Why the LED thread is not running any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Asked to stop; the LEDs show [`LedFrame::STOPPED`].
    Clean,
    /// The thread panicked; the LEDs show [`LedFrame::FAULT`] (if the pins could still be written).
    Panicked,
}

/// What the LEDs show now, for the status page and the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardStatus {
    /// The backend driving the LEDs (`"simulated"`, `"rppal"`, `"cdev"`).
    pub backend: &'static str,
    /// The frame on the LEDs now (the live frame, or the summary or button feedback over it).
    pub frame: LedFrame,
    /// The live frame last set by the firmware.
    pub live: LedFrame,
    /// Which LEDs are lit at this instant, in [`Led::ALL`] order.
    pub levels: [bool; 4],
    /// Last error writing an LED or reading the button, if any.
    pub error: Option<String>,
    /// `Some` once the thread has ended.
    pub stopped: Option<Stopped>,
}

impl BoardStatus {
    /// One terminal line, e.g. `SYSTEM ● heartbeat  BOX ● on  INSIGHTIDR ○ slow blink  ATTENTION ○ off`.
    pub fn render(&self) -> String {
        let mut line = String::new();
        for led in Led::ALL {
            if !line.is_empty() {
                line.push_str("  ");
            }
            let lit = if self.levels[led.index()] {
                '●'
            } else {
                '○'
            };
            line.push_str(&format!(
                "{} {lit} {}",
                led.label(),
                look_name(self.frame.look(led))
            ));
        }
        if let Some(stopped) = self.stopped {
            line.push_str(&format!("  [{stopped:?}]"));
        }
        line
    }
}

/// A short human name of a look, as printed on the sticker.
pub fn look_name(look: LedLook) -> String {
    match look {
        LedLook::Off => "off".into(),
        LedLook::On => "on".into(),
        LedLook::SlowBlink => "slow blink".into(),
        LedLook::FastBlink => "fast blink".into(),
        LedLook::Heartbeat => "heartbeat".into(),
        LedLook::Code(n) => format!("code {n}"),
        LedLook::Sweep => "sweep".into(),
        LedLook::WigWag => "wig-wag".into(),
    }
}

/// Pure choice of the frame on the LEDs: button feedback over the status summary over the live
/// frame; SYSTEM steady on instead of its look when the live frame is stale (firmware hung).
#[derive(Debug, Clone)]
pub struct Compositor {
    live: LedFrame,
    summary: Option<LedFrame>,
    summary_until: Option<Duration>,
    live_at: Duration,
    liveness: Option<Duration>,
}

impl Compositor {
    /// Shows `live` until told otherwise.
    pub fn new(live: LedFrame) -> Self {
        Self {
            live,
            summary: None,
            summary_until: None,
            live_at: Duration::ZERO,
            liveness: None,
        }
    }

    /// Treats the live frame as stale `timeout` after it was last set (see
    /// [`RunnerConfig::liveness_timeout`]).
    #[must_use]
    pub fn with_liveness(mut self, timeout: Option<Duration>) -> Self {
        self.liveness = timeout;
        self
    }

    /// Replaces the live frame (also a proof of life) at `now`.
    pub fn set_live(&mut self, frame: LedFrame, now: Duration) {
        self.live = frame;
        self.live_at = now;
    }

    /// Whether the live frame is older than the liveness timeout at `now`.
    pub fn is_stale(&self, now: Duration) -> bool {
        self.liveness
            .is_some_and(|t| now.saturating_sub(self.live_at) >= t)
    }

    /// The live frame.
    pub fn live(&self) -> LedFrame {
        self.live
    }

    /// Replaces the summary frame (`None`: a short press shows the live frame).
    pub fn set_summary(&mut self, frame: Option<LedFrame>) {
        self.summary = frame;
    }

    /// Shows the summary from `now` until `until`.
    pub fn start_summary(&mut self, until: Duration) {
        self.summary_until = Some(until);
    }

    /// The frame at `now`, given the button's overlay.
    pub fn frame(&self, now: Duration, overlay: Option<LedFrame>) -> LedFrame {
        if let Some(frame) = overlay {
            return frame;
        }
        let frame = match (self.summary, self.summary_until) {
            (Some(summary), Some(until)) if now < until => summary,
            _ => self.live,
        };
        if self.is_stale(now) {
            frame.with(Led::System, LedLook::On)
        } else {
            frame
        }
    }

    /// When the frame next changes on its own (end of the summary).
    pub fn next_change(&self, now: Duration) -> Option<Duration> {
        let summary_end = self
            .summary_until
            .filter(|until| *until > now && self.summary.is_some());
        let stale_at = self
            .liveness
            .map(|t| self.live_at + t)
            .filter(|at| *at > now);
        [summary_end, stale_at].into_iter().flatten().min()
    }
}

/// Messages from the handle, latest wins.
#[derive(Debug, Default)]
struct Inbox {
    live: Option<LedFrame>,
    summary: Option<Option<LedFrame>>,
    stop: bool,
    /// The frame a clean stop leaves on the LEDs ([`LedFrame::STOPPED`] when `None`).
    end_frame: Option<LedFrame>,
}

#[derive(Debug)]
struct Shared {
    inbox: Mutex<Inbox>,
    status: Mutex<BoardStatus>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere cannot leave it half-updated in a way that matters here.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The firmware's side of the LED thread. Dropping it stops the thread (STOPPED frame).
pub struct LedHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    waker: Thread,
}

impl fmt::Debug for LedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedHandle")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl LedHandle {
    /// Shows `frame` as the live frame (latest wins; never blocks on the LED thread).
    pub fn show(&self, frame: LedFrame) {
        lock(&self.shared.inbox).live = Some(frame);
        self.waker.unpark();
    }

    /// Sets the frame a short button press shows for [`ButtonConfig::summary_duration`]
    /// (typically the ATTENTION blink code of the most urgent problem). `None`: the live frame.
    pub fn set_summary(&self, frame: Option<LedFrame>) {
        lock(&self.shared.inbox).summary = Some(frame);
        self.waker.unpark();
    }

    /// What the LEDs show now.
    pub fn status(&self) -> BoardStatus {
        lock(&self.shared.status).clone()
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.status().stopped.is_none()
    }

    /// Stops the thread and waits for it; the LEDs end in [`LedFrame::STOPPED`], or in
    /// [`LedFrame::FAULT`] if the thread had panicked.
    pub fn stop(mut self) -> Stopped {
        self.shutdown()
    }

    /// Stops the thread leaving `frame` on the LEDs instead of [`LedFrame::STOPPED`]: how the
    /// firmware says why it refuses to start before it exits. Only steady looks (on, off) stay
    /// meaningful once nothing plays the pattern any more.
    pub fn stop_showing(mut self, frame: LedFrame) -> Stopped {
        lock(&self.shared.inbox).end_frame = Some(frame);
        self.shutdown()
    }

    fn shutdown(&mut self) -> Stopped {
        lock(&self.shared.inbox).stop = true;
        self.waker.unpark();
        let panicked = self.thread.take().is_some_and(|t| t.join().is_err());
        let mut status = lock(&self.shared.status);
        let stopped = if panicked {
            Stopped::Panicked
        } else {
            status.stopped.unwrap_or(Stopped::Clean)
        };
        status.stopped = Some(stopped);
        stopped
    }
}

impl Drop for LedHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

/// Callback receiving button events on the LED thread; keep it short (e.g. send on a channel).
pub type ButtonCallback = Box<dyn FnMut(ButtonEvent) + Send>;

/// Owns the player so that unwinding or returning leaves the LEDs in a defined state.
struct EndGuard<P: OutputPin, C: Clock> {
    player: LedPlayer<P>,
    clock: C,
    shared: Arc<Shared>,
}

impl<P: OutputPin, C: Clock> Drop for EndGuard<P, C> {
    fn drop(&mut self) {
        let (frame, stopped) = if thread::panicking() {
            (LedFrame::FAULT, Stopped::Panicked)
        } else {
            let end = lock(&self.shared.inbox).end_frame;
            (end.unwrap_or(LedFrame::STOPPED), Stopped::Clean)
        };
        let written = self.player.show_now(frame, self.clock.now());
        let mut status = lock(&self.shared.status);
        status.frame = frame;
        status.levels = self.player.levels();
        status.stopped = Some(stopped);
        if written.is_err() {
            status.error = Some(format!("could not write the {frame:?} frame"));
        }
    }
}

/// Starts the LED thread on `pins` (in [`Led::ALL`] order) and an optional reset `button`,
/// showing [`LedFrame::BOOT`] until the first [`LedHandle::show`]. `backend` names the pins'
/// backend in [`BoardStatus`].
pub fn spawn<P, B, C>(
    pins: [P; 4],
    button: Option<B>,
    clock: C,
    cfg: RunnerConfig,
    backend: &'static str,
    on_event: ButtonCallback,
) -> std::io::Result<LedHandle>
where
    P: OutputPin + Send + 'static,
    P::Error: fmt::Debug,
    B: InputPin + Send + 'static,
    B::Error: fmt::Debug,
    C: Clock + 'static,
{
    let shared = Arc::new(Shared {
        inbox: Mutex::new(Inbox::default()),
        status: Mutex::new(BoardStatus {
            backend,
            frame: LedFrame::BOOT,
            live: LedFrame::BOOT,
            levels: [false; 4],
            error: None,
            stopped: None,
        }),
    });
    let player = LedPlayer::new(pins, cfg.led_active_low);
    let guard = EndGuard {
        player,
        clock,
        shared: Arc::clone(&shared),
    };
    let thread = thread::Builder::new()
        .name("boxidr-leds".into())
        .spawn(move || run(guard, button, cfg, on_event))?;
    let waker = thread.thread().clone();
    Ok(LedHandle {
        shared,
        thread: Some(thread),
        waker,
    })
}

fn run<P, B, C>(
    mut g: EndGuard<P, C>,
    mut button: Option<B>,
    cfg: RunnerConfig,
    mut on_event: ButtonCallback,
) where
    P: OutputPin,
    P::Error: fmt::Debug,
    B: InputPin,
    B::Error: fmt::Debug,
    C: Clock,
{
    let mut comp = Compositor::new(LedFrame::BOOT).with_liveness(cfg.liveness_timeout);
    let mut tracker = ButtonTracker::new(cfg.button);
    let mut error: Option<String> = None;
    loop {
        let now = g.clock.now();
        {
            let mut inbox = lock(&g.shared.inbox);
            if inbox.stop {
                return;
            }
            if let Some(frame) = inbox.live.take() {
                comp.set_live(frame, now);
            }
            if let Some(summary) = inbox.summary.take() {
                comp.set_summary(summary);
            }
        }
        if let Some(pin) = button.as_mut() {
            match pin.is_high() {
                Ok(high) => {
                    if let Some(event) = tracker.sample(high == cfg.button_active_high, now) {
                        if event == ButtonEvent::ShortPress {
                            comp.start_summary(now + cfg.button.summary_duration);
                        }
                        on_event(event);
                    }
                }
                Err(e) => error = Some(format!("reading the reset button failed: {e:?}")),
            }
        }
        let frame = comp.frame(now, tracker.overlay(now));
        g.player.show(frame, now);
        let next_led = match g.player.update(now) {
            Ok(next) => next,
            Err(e) => {
                error = Some(format!("writing the {} LED failed: {:?}", e.led, e.source));
                Some(now + Duration::from_secs(1))
            }
        };
        {
            let mut status = lock(&g.shared.status);
            status.frame = frame;
            status.live = comp.live();
            status.levels = g.player.levels();
            if error.is_some() {
                status.error.clone_from(&error);
            }
        }
        let poll = button.as_ref().map(|_| now + cfg.button.poll_interval);
        let deadline = [
            next_led,
            comp.next_change(now),
            tracker.next_overlay_change(now),
            poll,
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = deadline.map_or(MAX_PARK, |d| d.saturating_sub(g.clock.now()).min(MAX_PARK));
        if !wait.is_zero() {
            thread::park_timeout(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Button feedback beats the summary, which beats the live frame until it expires.
    #[test]
    fn compositor_priorities() {
        let live = LedFrame::uniform(LedLook::On);
        let summary = LedFrame::single(Led::Attention, LedLook::Code(3));
        let mut c = Compositor::new(live);
        c.set_live(live, Duration::ZERO);
        c.start_summary(Duration::from_secs(10));
        assert_eq!(c.frame(Duration::ZERO, None), live, "no summary frame set");
        c.set_summary(Some(summary));
        assert_eq!(c.frame(Duration::from_secs(1), None), summary);
        assert_eq!(
            c.next_change(Duration::from_secs(1)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            c.frame(Duration::from_secs(1), Some(LedFrame::ALL_ON)),
            LedFrame::ALL_ON
        );
        assert_eq!(c.frame(Duration::from_secs(10), None), live);
        assert_eq!(c.next_change(Duration::from_secs(10)), None);
    }

    /// A firmware that stops calling `show` loses its heartbeat: SYSTEM goes steady on at the
    /// timeout, and comes back with the next `show`.
    #[test]
    fn stale_live_frame_stops_the_heartbeat() {
        let s = Duration::from_secs;
        let live = LedFrame::ALL_OFF
            .with(Led::System, LedLook::Heartbeat)
            .with(Led::Box, LedLook::On);
        let mut c = Compositor::new(LedFrame::BOOT).with_liveness(Some(s(30)));
        c.set_live(live, s(5));
        assert_eq!(c.frame(s(34), None), live);
        assert_eq!(c.next_change(s(34)), Some(s(35)));
        assert_eq!(c.frame(s(35), None), live.with(Led::System, LedLook::On));
        assert_eq!(
            c.frame(s(35), Some(LedFrame::ALL_ON)),
            LedFrame::ALL_ON,
            "button feedback still shows"
        );
        c.set_live(live, s(40));
        assert_eq!(c.frame(s(40), None), live);
    }
}
