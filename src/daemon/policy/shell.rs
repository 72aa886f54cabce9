//! A POSIX shell tokenizer for deciding, not for running.
//!
//! [`analyze`] splits a command into words (quotes and escapes resolved) and records every
//! piece of control syntax it meets. Only a command with none of it is a *whole simple
//! command* that an `allow` rule may match. The tokenizer errs towards "complex": anything it
//! does not fully understand (an unterminated quote, a control character, a glob or brace in
//! the program name, history expansion) marks the command complex, so a trick the shell
//! understands but we do not can only ever lead to `ask`, never to `allow`.
//!
//! It also collects every program name it can see, inside substitutions and behind wrappers
//! (`sudo rm`, `sh -c 'rm …'`), so `deny` rules match wherever a program appears.

/// Programs that run another command given as their arguments or as a string.
const WRAPPERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "eval", "exec", "xargs",
    "env", "sudo", "doas", "su", "nohup", "timeout", "nice", "ionice", "command", "builtin",
    "time", "busybox", "setsid", "stdbuf", "chroot", "runuser", "watch", "parallel", "script",
    "unbuffer", "flock", "chrt", "taskset", "nsenter", "unshare", "strace", "ltrace", "find",
    "ssh", "source", ".", "trap", "exec",
];

/// Shell reserved words: compound commands are control syntax.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "in", "function", "select", "!", "[[", "]]", "{", "}", "((", "coproc",
];

/// What [`analyze`] found in a command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// The words of the command, quotes and escapes resolved, when it is one whole simple
    /// command with no control syntax; `None` otherwise.
    pub simple: Option<Vec<String>>,
    /// Every program name the tokenizer can see (basenames), substitutions and wrapped
    /// commands included, in order of appearance.
    pub programs: Vec<String>,
    /// Each simple command found (its words joined by spaces), wrapped ones included: what a
    /// `deny` regex is also tried on.
    pub segments: Vec<String>,
    /// Why the command is not a whole simple command (empty when it is).
    pub reasons: Vec<String>,
}

impl Analysis {
    fn flag(&mut self, why: impl Into<String>) {
        let why = why.into();
        if !self.reasons.contains(&why) {
            self.reasons.push(why);
        }
    }
}

/// One word as the tokenizer saw it.
#[derive(Debug, Default)]
struct Word {
    /// The text with quotes and escapes resolved.
    text: String,
    /// Any quote or backslash took part in it.
    quoted: bool,
    /// An unquoted glob or brace character appeared in it.
    pattern: bool,
}

/// How deep substitutions and wrappers are followed; deeper nesting is itself suspicious.
const MAX_DEPTH: usize = 8;

/// Analyzes `cmd` (see the module docs).
pub fn analyze(cmd: &str) -> Analysis {
    let mut a = Analysis::default();
    let words = scan(cmd, &mut a, 0);
    if a.reasons.is_empty() {
        if words.is_empty() {
            a.flag("empty command");
        } else {
            a.simple = Some(words);
        }
    }
    a
}

/// Tokenizes `cmd` into `a`, returning the words of the last simple command seen.
fn scan(cmd: &str, a: &mut Analysis, depth: usize) -> Vec<String> {
    if depth > MAX_DEPTH {
        a.flag("nesting too deep");
        return Vec::new();
    }
    let c: Vec<char> = cmd.chars().collect();
    let mut i = 0;
    let mut words: Vec<Word> = Vec::new();
    let mut cur: Option<Word> = None;
    let mut last_simple = Vec::new();
    let finish = |cur: &mut Option<Word>, words: &mut Vec<Word>| {
        if let Some(w) = cur.take() {
            words.push(w);
        }
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' => {
                finish(&mut cur, &mut words);
                i += 1;
            }
            '\n' | ';' | '&' | '|' | '(' | ')' => {
                finish(&mut cur, &mut words);
                let op = match (ch, c.get(i + 1)) {
                    ('&', Some('&')) | ('|', Some('|')) | (';', Some(';')) => {
                        i += 1;
                        format!("`{ch}{ch}`")
                    }
                    ('\n', _) => "newline".to_string(),
                    ('(' | ')', _) => "subshell `( )`".to_string(),
                    _ => format!("`{ch}`"),
                };
                a.flag(op);
                last_simple = end_command(std::mem::take(&mut words), a, depth);
                i += 1;
            }
            '<' | '>' => {
                a.flag("redirection");
                if matches!(c.get(i + 1), Some('(')) {
                    // Process substitution runs a command: look inside for deny.
                    let (inner, next) = balanced(&c, i + 2, ')');
                    scan_inner(&inner, a, depth);
                    i = next;
                } else {
                    finish(&mut cur, &mut words);
                    i += 1;
                }
            }
            '#' if cur.is_none() => {
                a.flag("comment");
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(Word::default);
                w.quoted = true;
                i += 1;
                let start = i;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                if i >= c.len() {
                    a.flag("unterminated quote");
                }
                w.text.extend(&c[start..i.min(c.len())]);
                i += 1;
            }
            '"' => {
                cur.get_or_insert_with(Word::default).quoted = true;
                i += 1;
                let mut closed = false;
                while i < c.len() {
                    match c[i] {
                        '"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        '\\' if matches!(c.get(i + 1), Some('$' | '`' | '"' | '\\' | '\n')) => {
                            if c[i + 1] != '\n' {
                                push(&mut cur, c[i + 1]);
                            }
                            i += 2;
                        }
                        '$' | '`' => i = expansion(&c, i, a, depth),
                        '!' => {
                            a.flag("history expansion `!`");
                            push(&mut cur, '!');
                            i += 1;
                        }
                        other => {
                            push(&mut cur, other);
                            i += 1;
                        }
                    }
                }
                if !closed {
                    a.flag("unterminated quote");
                }
            }
            '\\' => {
                let w = cur.get_or_insert_with(Word::default);
                w.quoted = true;
                match c.get(i + 1) {
                    // A line continuation joins lines: still one word stream.
                    Some('\n') => {}
                    Some(&n) => w.text.push(n),
                    None => a.flag("trailing backslash"),
                }
                i += 2;
            }
            '$' | '`' => {
                cur.get_or_insert_with(Word::default);
                i = expansion(&c, i, a, depth);
            }
            '!' => {
                a.flag("history expansion `!`");
                push(&mut cur, '!');
                i += 1;
            }
            '*' | '?' | '[' | ']' | '{' | '}' | '~' => {
                let w = cur.get_or_insert_with(Word::default);
                // `~` only matters as a program name (`~/bin/x`), like a glob there.
                w.pattern = true;
                w.text.push(ch);
                i += 1;
            }
            other if other.is_control() => {
                a.flag("control character");
                i += 1;
            }
            other => {
                push(&mut cur, other);
                i += 1;
            }
        }
    }
    finish(&mut cur, &mut words);
    let tail = end_command(words, a, depth);
    if tail.is_empty() {
        last_simple
    } else {
        tail
    }
}

fn push(cur: &mut Option<Word>, ch: char) {
    cur.get_or_insert_with(Word::default).text.push(ch);
}

/// Handles `$…` or a backtick at `i`; returns the index after it.
fn expansion(c: &[char], i: usize, a: &mut Analysis, depth: usize) -> usize {
    if c[i] == '`' {
        a.flag("command substitution");
        let mut j = i + 1;
        let mut inner = String::new();
        while j < c.len() && c[j] != '`' {
            if c[j] == '\\' && j + 1 < c.len() {
                j += 1;
            }
            inner.push(c[j]);
            j += 1;
        }
        scan_inner(&inner, a, depth);
        return j + 1;
    }
    match c.get(i + 1) {
        Some('(') => {
            let arith = matches!(c.get(i + 2), Some('('));
            a.flag(if arith {
                "arithmetic expansion"
            } else {
                "command substitution"
            });
            let (inner, next) = balanced(c, i + 2, ')');
            scan_inner(&inner, a, depth);
            next
        }
        Some('{') => {
            a.flag("parameter expansion");
            let (inner, next) = balanced(c, i + 2, '}');
            // `${x:-$(cmd)}` runs cmd: look inside for deny.
            scan_inner(&inner, a, depth);
            next
        }
        Some(n) if n.is_ascii_alphanumeric() || "_@*#?$!-".contains(*n) => {
            a.flag("variable expansion");
            let mut j = i + 1;
            if c[j].is_ascii_alphabetic() || c[j] == '_' {
                while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
                    j += 1;
                }
                j
            } else {
                j + 1
            }
        }
        Some('\'') | Some('"') => {
            // `$'…'` (ANSI-C quoting) and `$"…"` (locale) rewrite the text.
            a.flag("`$'…'` quoting");
            i + 1
        }
        _ => i + 1,
    }
}

/// Scans a nested command (substitution) only for what it reveals; its words never allow.
fn scan_inner(inner: &str, a: &mut Analysis, depth: usize) {
    let _ = scan(inner, a, depth + 1);
}

/// Collects text from `start` up to the `close` matching an implied opener, honouring
/// quotes; returns it and the index after the closer (the end if unbalanced).
fn balanced(c: &[char], start: usize, close: char) -> (String, usize) {
    let open = if close == ')' { '(' } else { '{' };
    let mut depth = 1;
    let mut j = start;
    let mut quote: Option<char> = None;
    while j < c.len() {
        let ch = c[j];
        match quote {
            Some(q) if ch == q => quote = None,
            Some('"') if ch == '\\' => j += 1,
            Some(_) => {}
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            None if ch == '\\' => j += 1,
            None if ch == open => depth += 1,
            None if ch == close => {
                depth -= 1;
                if depth == 0 {
                    return (c[start..j].iter().collect(), j + 1);
                }
            }
            None => {}
        }
        j += 1;
    }
    (c[start.min(c.len())..].iter().collect(), c.len())
}

/// Ends one simple command: checks its program position and records what it runs.
fn end_command(words: Vec<Word>, a: &mut Analysis, depth: usize) -> Vec<String> {
    let mut idx = 0;
    while idx < words.len() && is_assignment(&words[idx]) {
        a.flag("assignment before the command");
        idx += 1;
    }
    let Some(prog) = words.get(idx) else {
        return words.into_iter().map(|w| w.text).collect();
    };
    if prog.quoted {
        a.flag("quotes or escapes in the program name");
    }
    if prog.pattern {
        a.flag("glob, brace or tilde in the program name");
    }
    if prog.text.is_empty() {
        a.flag("variable or substitution in command position");
    }
    let prog_text = prog.text.clone();
    let name = basename(&prog_text).to_string();
    let keyword = KEYWORDS.contains(&prog_text.as_str());
    if keyword {
        a.flag(format!("shell keyword `{prog_text}`"));
    }
    if prog_text.starts_with('^') {
        a.flag("history substitution `^`");
    }
    if !name.is_empty() {
        a.programs.push(name.clone());
    }
    let texts: Vec<String> = words.into_iter().map(|w| w.text).collect();
    a.segments.push(texts[idx..].join(" "));
    if WRAPPERS.contains(&name.as_str()) || keyword {
        a.flag(format!("wrapper program `{name}`"));
        // Whatever follows may be a program or a command string: look at each.
        for arg in &texts[idx + 1..] {
            scan_inner(arg, a, depth);
        }
    }
    texts
}

/// `NAME=value` in front of a command.
fn is_assignment(w: &Word) -> bool {
    match w.text.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// The last path component of a program name (`/bin/rm` → `rm`).
pub fn basename(prog: &str) -> &str {
    prog.rsplit('/').next().unwrap_or(prog)
}
