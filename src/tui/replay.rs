//! `agentssh replay`: plays a recording in this terminal through our own screen model, so
//! recorded escape sequences never reach the terminal raw. [`Player`] is the pure playback
//! state (clock, speed, pause, seek) shared with the dashboard's replay pane; `run_replay`
//! is the full-screen loop. Keys: space pause, left/right seek 5 s, +/- speed, q quit.

use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyModifiers};
use futures::StreamExt;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Paragraph;
use tokio::signal::unix::{signal, SignalKind};

use super::TerminalGuard;
use crate::cast::{Cast, Kind};
use crate::error::{Error, Result};
use crate::screen::Screen;

/// How far one left/right key seeks, seconds of recording time.
pub const SEEK_STEP: f64 = 5.0;
/// Slowest and fastest playback.
const SPEEDS: (f64, f64) = (0.125, 64.0);

/// Playback of one recording: a clock in recording time and the screen at that time.
pub struct Player {
    cast: Cast,
    /// Event times after the idle limit, non-decreasing.
    times: Vec<f64>,
    /// Index of the next event to apply.
    next: usize,
    /// The playback position, in (idle-limited) recording seconds.
    pos: f64,
    /// Playback speed.
    pub speed: f64,
    /// Paused.
    pub paused: bool,
    screen: Screen,
    /// The last marker passed, for the status line.
    pub last_marker: Option<String>,
}

/// What a key did to a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyResult {
    /// The player changed (or not); keep playing.
    Handled,
    /// The user asked to quit.
    Quit,
    /// Not a player key.
    Ignored,
}

impl Player {
    /// A player at the start of `cast`; pauses longer than `idle_limit` (or the header's
    /// `idle_time_limit`) are shortened to it.
    pub fn new(cast: Cast, speed: f64, idle_limit: Option<f64>) -> Player {
        let limit = idle_limit.or(cast.header.idle_time_limit);
        let mut times = Vec::with_capacity(cast.events.len());
        let (mut prev_raw, mut t) = (0.0f64, 0.0f64);
        for e in &cast.events {
            let gap = (e.time - prev_raw).max(0.0);
            t += limit.map_or(gap, |l| gap.min(l));
            prev_raw = e.time.max(prev_raw);
            times.push(t);
        }
        let screen = Screen::new(cast.header.height, cast.header.width, 0);
        Player {
            cast,
            times,
            next: 0,
            pos: 0.0,
            speed: speed.clamp(SPEEDS.0, SPEEDS.1),
            paused: false,
            screen,
            last_marker: None,
        }
    }

    /// The screen at the current position.
    pub fn screen(&self) -> &vt100::Screen {
        self.screen.screen()
    }

    /// Current position and total length, seconds.
    pub fn position(&self) -> (f64, f64) {
        (self.pos, self.times.last().copied().unwrap_or(0.0))
    }

    /// Whether every event has been played.
    pub fn finished(&self) -> bool {
        self.next >= self.times.len()
    }

    /// Moves the clock on by `wall` of real time (nothing while paused).
    pub fn tick(&mut self, wall: Duration) {
        if !self.paused {
            self.pos += wall.as_secs_f64() * self.speed;
            self.apply_until(self.pos);
        }
    }

    /// Real time until the next event is due (None when paused or finished).
    pub fn until_next(&self) -> Option<Duration> {
        if self.paused {
            return None;
        }
        let t = *self.times.get(self.next)?;
        Some(Duration::from_secs_f64(
            ((t - self.pos) / self.speed).max(0.0),
        ))
    }

    /// Seeks by `delta` seconds (back replays from the start: the screen is a fold).
    pub fn seek(&mut self, delta: f64) {
        let (_, total) = self.position();
        let target = (self.pos + delta).clamp(0.0, total);
        if target < self.pos {
            self.screen = Screen::new(self.cast.header.height, self.cast.header.width, 0);
            self.next = 0;
            self.last_marker = None;
        }
        self.pos = target;
        self.apply_until(target);
    }

    fn apply_until(&mut self, t: f64) {
        while let Some(&at) = self.times.get(self.next) {
            if at > t {
                break;
            }
            match &self.cast.events[self.next].kind {
                Kind::Output(s) => self.screen.feed(s.as_bytes()),
                Kind::Resize(c, r) => self.screen.resize(*r, *c),
                Kind::Marker(m) => self.last_marker = Some(m.clone()),
            }
            self.next += 1;
        }
        if self.finished() {
            self.pos = self.pos.min(self.position().1);
        }
    }

    /// Space, left/right, +/-, q (and Ctrl-C).
    pub fn on_key(&mut self, k: &KeyEvent) -> KeyResult {
        match k.code {
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => KeyResult::Quit,
            KeyCode::Char('q') | KeyCode::Esc => KeyResult::Quit,
            KeyCode::Char(' ') => {
                self.paused = !self.paused;
                KeyResult::Handled
            }
            KeyCode::Left => {
                self.seek(-SEEK_STEP);
                KeyResult::Handled
            }
            KeyCode::Right => {
                self.seek(SEEK_STEP);
                KeyResult::Handled
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.speed = (self.speed * 2.0).min(SPEEDS.1);
                KeyResult::Handled
            }
            KeyCode::Char('-') => {
                self.speed = (self.speed / 2.0).max(SPEEDS.0);
                KeyResult::Handled
            }
            _ => KeyResult::Ignored,
        }
    }

    /// The status line: position, speed, state, last marker.
    pub fn status(&self) -> String {
        let (pos, total) = self.position();
        let state = if self.finished() {
            "end"
        } else if self.paused {
            "paused"
        } else {
            "playing"
        };
        let marker = self
            .last_marker
            .as_deref()
            .map(|m| format!(" · {m}"))
            .unwrap_or_default();
        format!("{pos:.1}/{total:.1}s · {}x · {state}{marker}", self.speed)
    }
}

/// Plays `cast` full-screen until q, Ctrl-C or a signal; the terminal is restored on every
/// exit path (the guard's drop and the panic hook). Returns how it ended.
pub async fn run_replay(cast: Cast, speed: f64, idle_limit: Option<f64>) -> Result<&'static str> {
    let title = cast.header.title.clone().unwrap_or_default();
    let mut player = Player::new(cast, speed, idle_limit);
    let mut guard = TerminalGuard::enter()?;
    let mut keys = EventStream::new();
    let mut term_sig =
        signal(SignalKind::terminate()).map_err(|e| Error::local_io("SIGTERM", &e))?;
    let mut hup_sig = signal(SignalKind::hangup()).map_err(|e| Error::local_io("SIGHUP", &e))?;
    let mut int_sig = signal(SignalKind::interrupt()).map_err(|e| Error::local_io("SIGINT", &e))?;
    let mut last = Instant::now();
    // The title comes from the recording: only printable characters reach the status bar.
    let title: String = title.chars().filter(|c| !c.is_control()).take(80).collect();
    loop {
        let now = Instant::now();
        player.tick(now - last);
        last = now;
        guard
            .term
            .draw(|f| {
                let rows = Layout::default()
                    .direction(Direction::Vertical)
                    .constraints([Constraint::Length(1), Constraint::Min(1)])
                    .split(f.area());
                let bar = format!(
                    " agentssh replay {title} · {} · space pause ←/→ seek +/- speed q quit",
                    player.status()
                );
                f.render_widget(
                    Paragraph::new(bar).style(
                        Style::default()
                            .fg(Color::Black)
                            .bg(Color::Magenta)
                            .add_modifier(Modifier::BOLD),
                    ),
                    rows[0],
                );
                super::view::draw_anchored(f.buffer_mut(), rows[1], player.screen());
            })
            .map_err(|e| Error::local_io("drawing", &e))?;
        // Redraw at least every 250 ms while playing so the clock moves.
        let wait = player.until_next().map_or(Duration::from_secs(3600), |d| {
            d.min(Duration::from_millis(250))
        });
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != crossterm::event::KeyEventKind::Release => {
                    if player.on_key(&k) == KeyResult::Quit {
                        return Ok("quit");
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ok("input closed"),
            },
            _ = tokio::time::sleep(wait) => {}
            _ = term_sig.recv() => return Ok("signal"),
            _ = hup_sig.recv() => return Ok("signal"),
            _ = int_sig.recv() => return Ok("signal"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cast::{CastEvent, Header};

    fn cast() -> Cast {
        let ev = |time, s: &str| CastEvent {
            time,
            kind: Kind::Output(s.into()),
        };
        Cast {
            header: Header {
                version: 2,
                width: 20,
                height: 3,
                timestamp: 0,
                title: None,
                idle_time_limit: None,
            },
            events: vec![
                ev(0.5, "one\r\n"),
                CastEvent {
                    time: 1.0,
                    kind: Kind::Marker("agent sent 4 bytes".into()),
                },
                ev(10.0, "two\r\n"),
                ev(30.0, "three"),
            ],
        }
    }

    fn text(p: &Player) -> String {
        p.screen().contents()
    }

    #[test]
    fn plays_in_time_pauses_and_seeks_back() {
        let mut p = Player::new(cast(), 1.0, None);
        p.tick(Duration::from_millis(600));
        assert_eq!(text(&p).trim_end(), "one");
        assert_eq!(p.last_marker, None);
        p.on_key(&KeyEvent::from(KeyCode::Char(' ')));
        p.tick(Duration::from_secs(100));
        assert_eq!(text(&p).trim_end(), "one", "paused: nothing moves");
        p.on_key(&KeyEvent::from(KeyCode::Char(' ')));
        p.on_key(&KeyEvent::from(KeyCode::Right));
        p.on_key(&KeyEvent::from(KeyCode::Right));
        assert!(text(&p).contains("two"));
        assert_eq!(p.last_marker.as_deref(), Some("agent sent 4 bytes"));
        p.on_key(&KeyEvent::from(KeyCode::Left));
        p.on_key(&KeyEvent::from(KeyCode::Left));
        assert_eq!(
            text(&p).trim_end(),
            "one",
            "seeking back replays from the start"
        );
        assert_eq!(
            p.on_key(&KeyEvent::from(KeyCode::Char('q'))),
            KeyResult::Quit
        );
    }

    #[test]
    fn idle_limit_and_speed_shorten_the_wait() {
        let mut p = Player::new(cast(), 1.0, Some(2.0));
        assert_eq!(p.position().1, 0.5 + 0.5 + 2.0 + 2.0);
        p.on_key(&KeyEvent::from(KeyCode::Char('+')));
        assert_eq!(p.speed, 2.0);
        p.tick(Duration::from_millis(2400));
        assert!(!p.finished(), "4.8 s of 5 s played");
        p.tick(Duration::from_millis(200));
        assert!(p.finished());
        assert!(text(&p).contains("three"));
        assert!(p.status().contains("end"));
    }
}
