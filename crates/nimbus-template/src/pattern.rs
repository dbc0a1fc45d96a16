//! Just enough regular expressions for `AllowedPattern`.
//!
//! CloudFormation checks a parameter against `AllowedPattern` with Java's `matches()`: the whole
//! value must match. Templates use a small part of the syntax (classes, ranges, quantifiers,
//! groups, alternation), so a backtracking matcher over that part keeps this crate free of a
//! regex dependency. Syntax outside it (lookaround, backreferences, flags) is refused with a
//! message rather than matched wrongly.

#[derive(Debug)]
pub(crate) struct Pattern {
    re: Re,
}

#[derive(Debug)]
enum Re {
    Empty,
    Char(char),
    Any,
    Class(Class),
    Start,
    End,
    Concat(Vec<Re>),
    Alt(Vec<Re>),
    Repeat(Box<Re>, u32, Option<u32>),
}

#[derive(Debug)]
struct Class {
    negated: bool,
    items: Vec<Item>,
}

#[derive(Debug)]
enum Item {
    Range(char, char),
    /// `\d`, `\w`, `\s` and their negations.
    Shorthand(char),
}

impl Pattern {
    pub fn parse(src: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = src.chars().collect();
        let mut p = ParserState {
            chars: &chars,
            i: 0,
        };
        let re = p.alt()?;
        if p.i < chars.len() {
            return Err(format!("unbalanced ')' at character {}", p.i + 1));
        }
        Ok(Pattern { re })
    }

    pub fn full_match(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        matches(&self.re, &s, 0, &|i| i == s.len())
    }
}

struct ParserState<'a> {
    chars: &'a [char],
    i: usize,
}

impl ParserState<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.i += usize::from(c.is_some());
        c
    }

    fn alt(&mut self) -> Result<Re, String> {
        let mut branches = vec![self.concat()?];
        while self.peek() == Some('|') {
            self.i += 1;
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Re::Empty)
        } else {
            Re::Alt(branches)
        })
    }

    fn concat(&mut self) -> Result<Re, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(match items.len() {
            0 => Re::Empty,
            1 => items.pop().unwrap_or(Re::Empty),
            _ => Re::Concat(items),
        })
    }

    fn atom(&mut self) -> Result<Re, String> {
        let c = self.next().ok_or("unexpected end of pattern")?;
        Ok(match c {
            '(' => {
                if self.peek() == Some('?') {
                    if self.chars.get(self.i + 1) == Some(&':') {
                        self.i += 2;
                    } else {
                        return Err("lookaround and inline flags are not supported".into());
                    }
                }
                let inner = self.alt()?;
                if self.next() != Some(')') {
                    return Err("missing ')'".into());
                }
                inner
            }
            '[' => Re::Class(self.class()?),
            '.' => Re::Any,
            '^' => Re::Start,
            '$' => Re::End,
            '\\' => self.escape(false)?,
            '*' | '+' | '?' | '{' => return Err(format!("'{c}' has nothing to repeat")),
            c => Re::Char(c),
        })
    }

    fn escape(&mut self, in_class: bool) -> Result<Re, String> {
        let c = self.next().ok_or("pattern ends with a lone backslash")?;
        Ok(match c {
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => Re::Class(Class {
                negated: false,
                items: vec![Item::Shorthand(c)],
            }),
            'n' => Re::Char('\n'),
            't' => Re::Char('\t'),
            'r' => Re::Char('\r'),
            'f' => Re::Char('\u{c}'),
            'b' | 'B' | 'A' | 'z' | 'Z' | 'G' if !in_class => {
                return Err(format!("\\{c} is not supported"));
            }
            c if c.is_ascii_digit() => return Err("backreferences are not supported".into()),
            'p' | 'P' | 'u' | 'x' | 'Q' | 'E' | 'k' => {
                return Err(format!("\\{c} is not supported"))
            }
            c => Re::Char(c),
        })
    }

    fn class(&mut self) -> Result<Class, String> {
        let negated = self.peek() == Some('^');
        self.i += usize::from(negated);
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = self.next().ok_or("missing ']'")?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '\\' => match self.escape(true)? {
                    Re::Char(c) => c,
                    Re::Class(mut cls) => {
                        items.append(&mut cls.items);
                        continue;
                    }
                    _ => return Err("unsupported escape in a character class".into()),
                },
                '[' => return Err("nested character classes are not supported".into()),
                c => c,
            };
            let is_range =
                self.peek() == Some('-') && self.chars.get(self.i + 1).is_some_and(|c| *c != ']');
            if is_range {
                self.i += 1;
                let hi = match self.next().ok_or("missing ']'")? {
                    '\\' => match self.escape(true)? {
                        Re::Char(c) => c,
                        _ => return Err("a range cannot end in a class shorthand".into()),
                    },
                    c => c,
                };
                if hi < lo {
                    return Err(format!("range {lo}-{hi} is out of order"));
                }
                items.push(Item::Range(lo, hi));
            } else {
                items.push(Item::Range(lo, lo));
            }
        }
        Ok(Class { negated, items })
    }

    fn quantified(&mut self, atom: Re) -> Result<Re, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                self.i += 1;
                let min = self.number().ok_or("expected a number after '{'")?;
                let max = if self.peek() == Some(',') {
                    self.i += 1;
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.number().ok_or("expected a number after ','")?)
                    }
                } else {
                    Some(min)
                };
                if self.peek() != Some('}') {
                    return Err("missing '}'".into());
                }
                if max.is_some_and(|m| m < min) {
                    return Err(format!("{{{min},...}} has its bounds out of order"));
                }
                (min, max)
            }
            _ => return Ok(atom),
        };
        self.i += 1;
        // Lazy and possessive suffixes only change which match is found first; for a
        // whole-string match only whether one exists matters.
        if matches!(self.peek(), Some('?') | Some('+')) {
            self.i += 1;
        }
        Ok(Re::Repeat(Box::new(atom), min, max))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.chars[start..self.i]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }
}

impl Class {
    fn contains(&self, c: char) -> bool {
        let hit = self.items.iter().any(|item| match item {
            Item::Range(lo, hi) => (*lo..=*hi).contains(&c),
            Item::Shorthand(s) => {
                let base = match s.to_ascii_lowercase() {
                    'd' => c.is_ascii_digit(),
                    'w' => c.is_ascii_alphanumeric() || c == '_',
                    _ => matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}'),
                };
                base != s.is_ascii_uppercase()
            }
        });
        hit != self.negated
    }
}

/// Continuation-passing backtracking: `k` is asked whether the rest of the pattern matches from
/// a position, so every way of matching `re` is tried until one succeeds.
fn matches(re: &Re, s: &[char], i: usize, k: &dyn Fn(usize) -> bool) -> bool {
    match re {
        Re::Empty => k(i),
        Re::Char(c) => s.get(i) == Some(c) && k(i + 1),
        Re::Any => s.get(i).is_some_and(|c| *c != '\n') && k(i + 1),
        Re::Class(cls) => s.get(i).is_some_and(|c| cls.contains(*c)) && k(i + 1),
        Re::Start => i == 0 && k(i),
        Re::End => i == s.len() && k(i),
        Re::Concat(items) => concat(items, s, i, k),
        Re::Alt(branches) => branches.iter().any(|b| matches(b, s, i, k)),
        Re::Repeat(inner, min, max) => repeat(inner, *min, *max, 0, s, i, k),
    }
}

fn concat(items: &[Re], s: &[char], i: usize, k: &dyn Fn(usize) -> bool) -> bool {
    match items.split_first() {
        None => k(i),
        Some((first, rest)) => matches(first, s, i, &|j| concat(rest, s, j, k)),
    }
}

fn repeat(
    inner: &Re,
    min: u32,
    max: Option<u32>,
    count: u32,
    s: &[char],
    i: usize,
    k: &dyn Fn(usize) -> bool,
) -> bool {
    if max.is_some_and(|m| count >= m) {
        return k(i);
    }
    let more = matches(inner, s, i, &|j| {
        // An empty iteration can be repeated to meet any minimum, and repeating it further
        // would never end.
        if j == i {
            k(j)
        } else {
            repeat(inner, min, max, count + 1, s, j, k)
        }
    });
    more || (count >= min && k(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::parse(p).unwrap().full_match(s)
    }

    #[test]
    fn matches_the_whole_value_like_java() {
        assert!(m("[a-z]+", "abc"));
        assert!(!m("[a-z]+", "abc1"));
        assert!(m("^[a-z][a-z0-9-]*$", "my-bucket-1"));
        assert!(m("(dev|prod)", "prod"));
        assert!(!m("(dev|prod)", "qa"));
        assert!(m("\\d{3}-\\d{2,}", "123-4567"));
        assert!(!m("\\d{3}-\\d{2,}", "123-4"));
        assert!(m("[^,]*", "a b c"));
        assert!(m("(?:a?){3}", ""));
        assert!(m("[\\w.]+@example\\.com", "first.last@example.com"));
        assert!(m(".*", ""));
    }

    #[test]
    fn refuses_syntax_it_cannot_match_faithfully() {
        assert!(Pattern::parse("(?=a)").is_err());
        assert!(Pattern::parse("(a)\\1").is_err());
        assert!(Pattern::parse("*a").is_err());
        assert!(Pattern::parse("[a-").is_err());
        assert!(Pattern::parse("a)").is_err());
    }
}
