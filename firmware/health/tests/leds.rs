//! The health → LED mapping: one documented look per problem, priority when problems coexist,
//! and the LED table kept in `LEDS.md` (golden) and in agreement with the sticker.

use boxidr_health::scenarios::{self, all_well, first_start, raising};
use boxidr_health::{
    AuthState, ProblemCode, SinkState, assess, attention_code, led_frame, led_table_markdown,
    summary_frame,
};
use boxidr_model::{AttentionCode, Led, LedFrame, LedLook};

use LedLook::{FastBlink as Fast, Off, On, SlowBlink as Slow};

fn frame(box_link: LedLook, insightidr: LedLook, attention: LedLook) -> LedFrame {
    LedFrame {
        system: LedLook::Heartbeat,
        box_link,
        insightidr,
        attention,
    }
}

/// Every problem code, raised on an otherwise healthy box, gives exactly this frame and this
/// button code. The table is exhaustive: a new code fails here until it has a documented look.
#[test]
fn every_problem_has_one_documented_look() {
    use AttentionCode as A;
    use ProblemCode as P;
    let table: [(P, LedFrame, Option<A>); 27] = [
        (P::StorageFault, frame(On, On, Fast), Some(A::StorageFault)),
        // The poller pauses when the queue is full: BOX slow blink too.
        (
            P::QueueFull,
            frame(Slow, On, Fast),
            Some(A::QueueNearlyFull),
        ),
        (P::SetupNeeded, frame(Off, Off, On), Some(A::SetupNeeded)),
        (
            P::BoxReauthorisationNeeded,
            frame(Fast, On, On),
            Some(A::ReauthorisationNeeded),
        ),
        // The poller waits for the clock: BOX slow blink too.
        (
            P::ClockNotSynchronised,
            frame(Slow, On, On),
            Some(A::ClockNotSynchronised),
        ),
        (P::BoxHalted, frame(Fast, On, Off), None),
        (P::BoxUnreachable, frame(Fast, On, Off), None),
        (P::SinkConfigError, frame(On, Fast, Off), None),
        (P::SinkUnreachable, frame(On, Fast, Off), None),
        // A storage error a reopen got past still needs a person: the card may be failing.
        (P::StoreReopened, frame(On, On, Slow), Some(A::StorageFault)),
        (
            P::QueueNearlyFull,
            frame(On, On, Slow),
            Some(A::QueueNearlyFull),
        ),
        (
            P::LedsUnavailable,
            frame(On, On, Slow),
            Some(A::LedsUnavailable),
        ),
        (
            P::BoxDataUnreadable,
            frame(Slow, On, Slow),
            Some(A::DataSetAside),
        ),
        // Records InsightIDR refused for good are kept: a person downloads and removes them.
        (P::DeadLetters, frame(On, On, Slow), Some(A::DataSetAside)),
        (P::BoxRefreshFailing, frame(Slow, On, Off), None),
        (P::BoxRetrying, frame(Slow, On, Off), None),
        (P::SinkRetrying, frame(On, Slow, Off), None),
        (P::SinkNotSeen, frame(On, Slow, Off), None),
        (P::SinkStopped, frame(On, Slow, Off), None),
        (P::BoxThrottled, frame(Slow, On, Off), None),
        (
            P::BoxPausedQueueFull,
            frame(Slow, On, Fast),
            Some(A::QueueNearlyFull),
        ),
        (P::BoxWaitingForClock, frame(Slow, On, Off), None),
        (P::BoxCatchingUp, frame(Slow, On, Off), None),
        (P::SinkUnconfirmed, frame(On, Slow, Off), None),
        (P::ClockWaiting, frame(Slow, On, Off), None),
        (P::BoxStreamRecovered, frame(On, On, Off), None),
        (P::StoreRepaired, frame(On, On, Off), None),
    ];
    let listed: Vec<ProblemCode> = table.iter().map(|(c, _, _)| *c).collect();
    assert_eq!(
        listed,
        ProblemCode::ALL,
        "one row per code, in catalogue order"
    );

    for (code, expected, button) in table {
        let health = assess(&raising(code));
        assert!(health.has(code), "{code}: not raised by its scenario");
        assert_eq!(led_frame(&health), expected, "{code}");
        assert_eq!(attention_code(&health), button, "{code}");
        // The catalogue's own description of the look agrees with the frame.
        for (led, look) in boxidr_health::leds::problem_looks(code) {
            assert_eq!(expected.look(led), look, "{code} on {led}");
        }
    }
}

/// The healthy box and the unpacked box show the looks the sticker describes.
#[test]
fn all_well_and_first_start() {
    let health = assess(&all_well());
    assert!(health.problems.is_empty(), "{:?}", health.problems);
    assert_eq!(led_frame(&health), frame(On, On, Off));
    assert_eq!(summary_frame(&health), None);

    let health = assess(&first_start());
    assert_eq!(led_frame(&health), frame(Off, Off, On));
    assert_eq!(
        summary_frame(&health),
        Some(frame(Off, Off, LedLook::Code(2)))
    );
}

/// When problems coexist, ATTENTION and the button code follow the documented order:
/// storage fault > queue full > setup needed > re-authorisation > clock > queue nearly full >
/// LEDs unavailable.
#[test]
fn priority_when_problems_coexist() {
    use ProblemCode as P;
    let combine = |codes: &[P]| {
        let mut f = all_well();
        for code in codes {
            let r = raising(*code);
            match code {
                P::StorageFault | P::QueueNearlyFull | P::QueueFull => {
                    f.store.error = f.store.error.or(r.store.error);
                    f.store.file_bytes = f.store.file_bytes.max(r.store.file_bytes);
                    f.box_.queue_full |= r.box_.queue_full;
                }
                P::SetupNeeded => {
                    f.setup_complete = false;
                    f.collector = r.collector;
                    f.log_search = r.log_search;
                }
                P::BoxReauthorisationNeeded => {
                    f.box_.auth = r.box_.auth;
                    f.box_.halted = r.box_.halted;
                }
                P::ClockNotSynchronised => f.clock = r.clock,
                P::LedsUnavailable => f.board = r.board,
                other => unreachable!("{other}"),
            }
        }
        f
    };
    let order = [
        (P::StorageFault, AttentionCode::StorageFault, Fast),
        (P::QueueFull, AttentionCode::QueueNearlyFull, Fast),
        (P::SetupNeeded, AttentionCode::SetupNeeded, On),
        (
            P::BoxReauthorisationNeeded,
            AttentionCode::ReauthorisationNeeded,
            On,
        ),
        (
            P::ClockNotSynchronised,
            AttentionCode::ClockNotSynchronised,
            On,
        ),
        (P::QueueNearlyFull, AttentionCode::QueueNearlyFull, Slow),
        (P::LedsUnavailable, AttentionCode::LedsUnavailable, Slow),
    ];
    // Each problem together with every lower-priority one: the higher one wins.
    for (i, (winner, code, look)) in order.iter().enumerate() {
        let mut codes = vec![*winner];
        codes.extend(order[i + 1..].iter().map(|(c, _, _)| *c));
        // Queue full and nearly full are one gauge: never raised together.
        if codes.contains(&P::QueueFull) {
            codes.retain(|c| *c != P::QueueNearlyFull);
        }
        let health = assess(&combine(&codes));
        assert_eq!(attention_code(&health), Some(*code), "{codes:?}");
        assert_eq!(led_frame(&health).attention, *look, "{codes:?}");
        assert_eq!(
            summary_frame(&health).map(|f| f.attention),
            Some(code.look()),
            "{codes:?}"
        );
        // Every other problem is still listed, below the winner.
        for other in &codes {
            assert!(health.has(*other), "{other} missing from {codes:?}");
        }
        assert_eq!(health.top_attention().map(|p| p.code), Some(*winner));
    }
}

/// The two sinks share the INSIGHTIDR LED: the worse one shows, a sink that is not set up does
/// not count unless neither is.
#[test]
fn insightidr_shows_the_worse_sink() {
    let mut f = all_well();
    f.log_search = raising(ProblemCode::SinkRetrying).log_search;
    f.collector = raising(ProblemCode::SinkConfigError).collector;
    assert_eq!(led_frame(&assess(&f)).insightidr, Fast);

    let mut f = all_well();
    f.collector.configured = false;
    assert_eq!(led_frame(&assess(&f)).insightidr, On);
    f.log_search.state = SinkState::Disabled;
    let health = assess(&f);
    assert_eq!(led_frame(&health).insightidr, Off);
    assert!(health.has(ProblemCode::SetupNeeded));
}

/// Re-authorisation is shown on both BOX (failing) and ATTENTION (code 3), and a halted poller
/// is not reported twice for it.
#[test]
fn reauthorisation_is_one_problem_on_two_leds() {
    let health = assess(&raising(ProblemCode::BoxReauthorisationNeeded));
    assert!(!health.has(ProblemCode::BoxHalted));
    let mut f = all_well();
    f.box_.auth = AuthState::NotConnected;
    let health = assess(&f);
    assert_eq!(led_frame(&health).box_link, Off);
    assert!(health.has(ProblemCode::SetupNeeded));
}

/// The summary frame is the live frame with the code on ATTENTION, and exists exactly when
/// ATTENTION is lit.
#[test]
fn summary_matches_live_frame() {
    for code in ProblemCode::ALL {
        let health = assess(&raising(code));
        let live = led_frame(&health);
        match summary_frame(&health) {
            Some(summary) => {
                assert_ne!(live.attention, Off, "{code}");
                assert_eq!(
                    summary.with(Led::Attention, Off),
                    live.with(Led::Attention, Off)
                );
                assert!(matches!(summary.attention, LedLook::Code(1..=7)));
            }
            None => assert_eq!(live.attention, Off, "{code}"),
        }
    }
}

const BEGIN: &str = "<!-- BEGIN generated by boxidr_health::led_table_markdown() -->\n";
const END: &str = "<!-- END generated -->";

/// `firmware/health/LEDS.md` carries the table generated from the mapping. Run with
/// `BOXIDR_BLESS=1` to rewrite it after a deliberate change.
#[test]
fn leds_md_matches_the_mapping() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("LEDS.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = text.find(END).expect("end marker");
    let generated = led_table_markdown();
    if std::env::var_os("BOXIDR_BLESS").is_some() {
        let updated = format!("{}{generated}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        text[start..end] == generated,
        "LEDS.md is out of date; run `BOXIDR_BLESS=1 cargo test -p boxidr-health --test leds` \
         and review the diff. Expected:\n{generated}"
    );
}

/// The sticker (`board/LEDS.md`) numbers the button codes as the model does, and its "all is
/// well" line is what the mapping shows for a healthy box.
#[test]
fn sticker_agrees_with_the_mapping() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../board/LEDS.md");
    let sticker = std::fs::read_to_string(path).unwrap();
    let keyword = |code: AttentionCode| match code {
        AttentionCode::StorageFault => "storage fault",
        AttentionCode::SetupNeeded => "setup needed",
        AttentionCode::ReauthorisationNeeded => "Box authorisation revoked",
        AttentionCode::ClockNotSynchronised => "clock not synchronised",
        AttentionCode::QueueNearlyFull => "queue nearly full",
        AttentionCode::LedsUnavailable => "LEDs cannot be driven",
        AttentionCode::DataSetAside => "data set aside",
    };
    for code in AttentionCode::ALL {
        let row = format!("| {} | {}", code.flashes(), keyword(code));
        assert!(sticker.contains(&row), "sticker lacks `{row}`");
    }

    let line = sticker
        .lines()
        .find(|l| l.starts_with("All is well:"))
        .expect("all-is-well line");
    let well = led_frame(&assess(&all_well()));
    for (led, look) in well.iter() {
        let said = format!("{} {}", led.label(), boxidr_health::leds::look_name(look));
        assert!(
            line.contains(&said),
            "sticker says `{line}`, mapping `{said}`"
        );
    }
}

/// The examples in the table are what their names say (a guard on the scenarios themselves).
#[test]
fn examples_are_distinct_situations() {
    let examples = scenarios::examples();
    let mut names: Vec<_> = examples.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), examples.len());
    assert_eq!(examples[0].1, all_well());
}
