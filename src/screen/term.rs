//! [`Screen`]: the `vt100` terminal model of one session, fed through an [`EscapeFilter`].
//!
//! It answers `session screen` ([`Screen::snapshot`]), follows resizes, and produces keyframes
//! ([`Screen::keyframe`]): bytes that redraw the current screen in a fresh `Screen` of the same
//! size, which a watcher (dashboard, attach) feeds before the live byte stream.
//!
//! `vt100` 0.16 does not store the window title, so [`ScreenCallbacks`] records it (sanitised:
//! no control or Private Use Area characters, at most 256 characters).

use serde::Serialize;

use super::filter::EscapeFilter;

/// Default scrollback, in lines.
pub const DEFAULT_SCROLLBACK: usize = 1000;
/// Widest screen accepted; larger sizes are clamped.
pub const MAX_COLS: u16 = 500;
/// Tallest screen accepted; larger sizes are clamped.
pub const MAX_ROWS: u16 = 300;

/// Smallest size accepted on either axis: vt100 0.16 panics (subtract overflow) when text
/// wraps on a 1-row screen or a wide character is printed on a 1-column screen.
pub const MIN_SIZE: u16 = 2;

/// Upper bound on the scrollback a `Screen` may be created with.
const MAX_SCROLLBACK: usize = 100_000;
/// Longest title kept, in characters.
const MAX_TITLE_CHARS: usize = 256;
/// Input is filtered and parsed in pieces of this size so the scratch buffer stays small.
const FEED_PIECE: usize = 64 * 1024;

/// `vt100` callbacks recording what the screen itself does not keep: the window title.
#[derive(Debug, Clone, Default)]
pub struct ScreenCallbacks {
    title: String,
}

impl ScreenCallbacks {
    /// The last title set with OSC 0 or OSC 2 (sanitised).
    pub fn title(&self) -> &str {
        &self.title
    }
}

impl vt100::Callbacks for ScreenCallbacks {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title = String::from_utf8_lossy(title)
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..))
            .take(MAX_TITLE_CHARS)
            .collect();
    }
}

/// The parser type behind a [`Screen`]; render `parser.screen()` with tui-term.
pub type ScreenParser = vt100::Parser<ScreenCallbacks>;

/// A plain-text picture of the screen, for `session screen`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenSnapshot {
    /// Each visible row's text, trailing spaces trimmed.
    pub rows: Vec<String>,
    /// Cursor position as (row, col), 0-based.
    pub cursor: (u16, u16),
    /// Whether the program shows the cursor.
    pub cursor_visible: bool,
    /// Whether a full-screen program has switched to the alternate screen.
    pub alternate_screen: bool,
    /// The window title the program set (sanitised), or empty.
    pub title: String,
    /// Width in columns.
    pub cols: u16,
    /// Height in rows.
    pub rows_count: u16,
}

/// A session's terminal model. See the module docs.
pub struct Screen {
    parser: ScreenParser,
    filter: EscapeFilter,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("size", &self.size())
            .field("title", &self.title())
            .finish_non_exhaustive()
    }
}

/// Clamps a size to [`MIN_SIZE`]..=[`MAX_ROWS`] rows and [`MIN_SIZE`]..=[`MAX_COLS`] columns.
fn clamp_size(rows: u16, cols: u16) -> (u16, u16) {
    (
        rows.clamp(MIN_SIZE, MAX_ROWS),
        cols.clamp(MIN_SIZE, MAX_COLS),
    )
}

impl Screen {
    /// A blank screen; the size is clamped to 2..=300 rows and 2..=500 columns (see
    /// [`MIN_SIZE`]), the scrollback to 100,000 lines.
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Self {
        let (rows, cols) = clamp_size(rows, cols);
        let mut filter = EscapeFilter::default();
        filter.set_count_limit(rows.max(cols));
        Self {
            parser: vt100::Parser::new_with_callbacks(
                rows,
                cols,
                scrollback.min(MAX_SCROLLBACK),
                ScreenCallbacks::default(),
            ),
            filter,
            scratch: Vec::new(),
        }
    }

    /// Feeds PTY output.
    pub fn feed(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(FEED_PIECE) {
            self.scratch.clear();
            self.filter.filter(piece, &mut self.scratch);
            self.parser.process(&self.scratch);
        }
    }

    /// Resizes the screen (clamped like [`Screen::new`]).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = clamp_size(rows, cols);
        // vt100 drops rows from the bottom when shrinking; a terminal keeps the cursor line
        // and pushes the top into history instead. Scroll up by the overflow first.
        let (cursor_row, _) = self.parser.screen().cursor_position();
        if rows <= cursor_row && !self.parser.screen().alternate_screen() {
            let overflow = cursor_row - rows + 1;
            self.parser
                .process(format!("\x1b[{overflow}S\x1b[{overflow}A").as_bytes());
        }
        self.parser.screen_mut().set_size(rows, cols);
        self.filter.set_count_limit(rows.max(cols));
    }

    /// Current size as (rows, cols).
    pub fn size(&self) -> (u16, u16) {
        self.parser.screen().size()
    }

    /// The window title last set by the program (sanitised), or empty.
    pub fn title(&self) -> &str {
        self.parser.callbacks().title()
    }

    /// The underlying parser; the dashboard renders `parser().screen()` with tui-term.
    pub fn parser(&self) -> &ScreenParser {
        &self.parser
    }

    /// The `vt100` screen (shorthand for `parser().screen()`).
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// Scrolls the view `rows` lines back into history (0 = live view). The value is clamped
    /// to the history available, so `set_scrollback(usize::MAX)` followed by
    /// [`Screen::scrollback`] tells how much history there is. The alternate screen has none.
    pub fn set_scrollback(&mut self, rows: usize) {
        self.parser.screen_mut().set_scrollback(rows);
    }

    /// How many lines the view is currently scrolled back (0 = live view).
    pub fn scrollback(&self) -> usize {
        self.parser.screen().scrollback()
    }

    /// Whether no escape sequence is half-way through the filter. A keyframe taken here lines
    /// up exactly with the live bytes that follow it.
    pub fn at_sequence_boundary(&self) -> bool {
        self.filter.in_ground()
    }

    /// The pre-filter, for tests that check its memory bound.
    #[cfg(test)]
    pub(super) fn filter(&self) -> &EscapeFilter {
        &self.filter
    }

    /// A plain-text picture of the current view (the scrolled view if scrolled back).
    pub fn snapshot(&self) -> ScreenSnapshot {
        let screen = self.parser.screen();
        let (rows_count, cols) = screen.size();
        let rows = screen
            .rows(0, cols)
            .map(|mut row| {
                row.truncate(row.trim_end_matches(' ').len());
                row
            })
            .collect();
        ScreenSnapshot {
            rows,
            cursor: screen.cursor_position(),
            cursor_visible: !screen.hide_cursor(),
            alternate_screen: screen.alternate_screen(),
            title: self.title().to_owned(),
            cols,
            rows_count,
        }
    }

    /// Bytes that, fed into a fresh `Screen` of the same size, reproduce the live screen:
    /// contents with colours and attributes, cursor position and visibility, input modes
    /// (keypad, cursor keys, bracketed paste, mouse), the title, and, when a full-screen
    /// program is running, both the normal screen underneath and the alternate screen.
    ///
    /// Not reproduced (vt100 0.16 does not expose them): scrollback history, the scroll
    /// region, origin mode, the saved cursor and character sets. The live view is used even
    /// when this screen is scrolled back.
    pub fn keyframe(&self) -> Vec<u8> {
        let live = self.parser.screen();
        let mut out = Vec::new();
        if live.alternate_screen() {
            // Draw the normal screen first: leave the alternate screen in a throwaway copy.
            let (rows, cols) = live.size();
            let mut normal = vt100::Parser::new(rows, cols, 0);
            *normal.screen_mut() = live.clone();
            normal.process(b"\x1b[?47l");
            out.extend(normal.screen().contents_formatted());
            // Save the cursor, clear and enter the alternate screen, as programs do.
            out.extend_from_slice(b"\x1b[?1049h");
            out.extend(live.state_formatted());
        } else if live.scrollback() > 0 {
            let mut copy = live.clone();
            copy.set_scrollback(0);
            out.extend(copy.state_formatted());
        } else {
            out.extend(live.state_formatted());
        }
        let title = self.title();
        if !title.is_empty() {
            out.extend_from_slice(b"\x1b]2;");
            out.extend_from_slice(title.as_bytes());
            out.push(0x07);
        }
        out
    }
}
