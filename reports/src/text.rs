//! Cleaning arbitrary text before it goes into a report.
//!
//! Scenario names, failure messages, stub journals and stderr tails are arbitrary strings:
//! a target may colour its stderr, print a NUL, or emit a terminal title sequence. Reports
//! must show what a person would have read in a terminal and must stay well-formed, so
//! every writer that is not a faithful data dump (JUnit, Markdown, HTML) passes text through
//! [`clean`] first. `results.json` keeps the raw strings.

/// Removes ANSI escape sequences and characters that have no place in a text report.
///
/// What goes:
/// - CSI sequences (`ESC [` or `U+009B`, parameters, intermediates, one final byte), e.g.
///   colours `\x1b[31m`; an unterminated one is dropped up to where it stops being one.
/// - String sequences (OSC `ESC ]`, DCS `ESC P`, SOS `ESC X`, PM `ESC ^`, APC `ESC _`, or
///   their C1 forms), up to and including BEL or ST (`ESC \`, `U+009C`); an unterminated
///   one ends at the next line break, so a cut-off title sequence does not swallow a whole
///   stderr tail.
/// - Other escape sequences (`ESC`, intermediates, one final byte, e.g. `ESC ( B`) and a lone `ESC`.
/// - Control characters (Unicode `Cc`: C0, DEL, C1) except tab, line feed and carriage
///   return, and the noncharacters U+FFFE and U+FFFF: XML 1.0 forbids most of them and
///   none of them reads as anything.
pub(crate) fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                Some(next) if is_intermediate(next) || is_escape_final(next) => {
                    while chars.next_if(|&c| is_intermediate(c)).is_some() {}
                    chars.next_if(|&c| is_escape_final(c));
                }
                // A lone ESC, or ESC before something that cannot continue a sequence:
                // drop the ESC, keep what follows.
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_unwanted(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// [`clean`], with every line break (`\r\n`, `\n`, `\r`) and tab turned into one space:
/// for table cells, headings and attributes that must stay on one line.
pub(crate) fn one_line(s: &str) -> String {
    clean(s)
        .replace("\r\n", " ")
        .replace(['\r', '\n', '\t'], " ")
}

/// [`clean`], then escaped for HTML (and SVG inside HTML): for element text and for
/// quoted attribute values alike (`&`, `<`, `>`, `"`, `'`). Also drops the noncharacters
/// (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF) an HTML parser reports as errors.
pub(crate) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_noncharacter(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// [`html`], with each pair of backticks turned into `<code>` (the harness writes names and
/// values in backticks, as Markdown does). An unpaired backtick stays as it is.
pub(crate) fn html_code(s: &str) -> String {
    let escaped = html(s);
    let parts: Vec<&str> = escaped.split('`').collect();
    if parts.len() < 3 {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 16);
    let pairs = (parts.len() - 1) / 2;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            let inside_pair = i <= 2 * pairs;
            out.push_str(match (inside_pair, i % 2) {
                (true, 1) => "<code>",
                (true, _) => "</code>",
                (false, _) => "`",
            });
        }
        out.push_str(part);
    }
    out
}

fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xfdd0..=0xfdef).contains(&c) || c & 0xfffe == 0xfffe
}

/// True for characters a report drops: controls other than `\t`, `\n`, `\r`, and the
/// noncharacters XML 1.0 excludes.
fn is_unwanted(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}')
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After `ESC [`: parameter bytes, intermediate bytes, then one final byte. Stops without
/// consuming at anything else, so a malformed sequence costs only its introducer.
fn skip_csi(chars: &mut Chars<'_>) {
    while chars.next_if(|&c| ('\x30'..='\x3f').contains(&c)).is_some() {}
    while chars.next_if(|&c| is_intermediate(c)).is_some() {}
    chars.next_if(|&c| ('\x40'..='\x7e').contains(&c));
}

/// After an OSC/DCS/SOS/PM/APC introducer: everything up to BEL or ST (consumed), or up
/// to a line break or the end (not consumed).
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(&c) = chars.peek() {
        match c {
            '\x07' | '\u{9c}' => {
                chars.next();
                return;
            }
            '\x1b' => {
                chars.next();
                chars.next_if_eq(&'\\');
                return;
            }
            '\n' | '\r' => return,
            _ => {
                chars.next();
            }
        }
    }
}

fn is_intermediate(c: char) -> bool {
    ('\x20'..='\x2f').contains(&c)
}

fn is_escape_final(c: char) -> bool {
    ('\x30'..='\x7e').contains(&c) && !matches!(c, '[' | ']' | 'P' | 'X' | '^' | '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours_and_keeps_text() {
        assert_eq!(clean("\x1b[1;31merror\x1b[0m: boom\x1b[K"), "error: boom");
    }

    #[test]
    fn strips_osc_terminated_by_bel_or_st() {
        assert_eq!(clean("a\x1b]0;title\x07b"), "ab");
        assert_eq!(
            clean("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b"),
            "alinkb"
        );
        assert_eq!(clean("a\u{9d}0;title\u{9c}b"), "ab");
    }

    #[test]
    fn unterminated_osc_ends_at_line_break() {
        assert_eq!(clean("a\x1b]0;title\nnext line"), "a\nnext line");
        assert_eq!(clean("a\x1b]0;title"), "a");
    }

    #[test]
    fn strips_short_escapes_and_lone_esc() {
        assert_eq!(clean("a\x1b(Bb\x1b7c\x1b"), "abc");
        // ESC before a character that cannot continue a sequence: only ESC goes.
        assert_eq!(clean("a\x1b\u{e9}"), "a\u{e9}");
    }

    #[test]
    fn malformed_csi_costs_only_its_introducer() {
        assert_eq!(clean("\x1b[12\u{e9}x"), "\u{e9}x");
        assert_eq!(clean("\u{9b}31mred"), "red");
        assert_eq!(clean("\x1b["), "");
    }

    #[test]
    fn drops_forbidden_characters_keeps_whitespace() {
        assert_eq!(
            clean("a\u{0}b\u{1}c\u{7f}d\u{85}e\u{fffe}\u{ffff}f\t\n\r"),
            "abcdef\t\n\r"
        );
        assert_eq!(
            clean("caf\u{e9} \u{4e2d} \u{1f680}"),
            "caf\u{e9} \u{4e2d} \u{1f680}"
        );
    }

    #[test]
    fn backtick_pairs_become_code_and_a_lone_one_stays() {
        assert_eq!(
            html_code("pass rate of `a<b`"),
            "pass rate of <code>a&lt;b</code>"
        );
        assert_eq!(
            html_code("`x` and `y` and `z"),
            "<code>x</code> and <code>y</code> and `z"
        );
        assert_eq!(html_code("no code"), "no code");
    }

    #[test]
    fn html_escapes_markup_and_drops_noncharacters() {
        assert_eq!(
            html("<script>alert('x') & \"y\"</script>\x1b[31m\u{fdd0}\u{1fffe}\u{10ffff}"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn one_line_joins_lines() {
        assert_eq!(one_line("a\r\nb\nc\rd\te"), "a b c d e");
    }
}
