//! The filter lexer: tokens with their byte offsets, keywords, string escapes and numbers.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    And,
    Or,
    Not,
    In,
    True,
    False,
    Null,
}

impl Keyword {
    pub(super) fn parse(word: &str) -> Option<Keyword> {
        const ALL: [(&str, Keyword); 7] = [
            ("and", Keyword::And),
            ("or", Keyword::Or),
            ("not", Keyword::Not),
            ("in", Keyword::In),
            ("true", Keyword::True),
            ("false", Keyword::False),
            ("null", Keyword::Null),
        ];
        ALL.iter()
            .find(|(name, _)| word.eq_ignore_ascii_case(name))
            .map(|&(_, keyword)| keyword)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Field,
    Keyword(Keyword),
    Str(String),
    Int(i64),
    Float(f64),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    End,
}

/// A token and its byte range in the source.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
}

pub(super) fn is_field_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

pub(super) fn is_field_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

pub(super) fn count_digits(bytes: &[u8], from: usize) -> usize {
    bytes.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|b| b.is_ascii_digit()).count()
    })
}

impl<'a> Lexer<'a> {
    pub(super) fn next_token(&mut self) -> Result<Token, FilterError> {
        self.skip_whitespace();
        let start = self.pos;
        let Some(&b) = self.src.as_bytes().get(start) else {
            return Ok(Token {
                tok: Tok::End,
                start,
                end: start,
            });
        };
        let tok = match b {
            b'(' => self.punct(Tok::LParen),
            b')' => self.punct(Tok::RParen),
            b',' => self.punct(Tok::Comma),
            b'"' => self.string()?,
            b'-' | b'0'..=b'9' => self.number()?,
            b'=' | b'!' | b'<' | b'>' => self.operator()?,
            b if is_field_start(b) => self.word(),
            _ => return Err(self.unexpected_char()),
        };
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    pub(super) fn skip_whitespace(&mut self) {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    pub(super) fn punct(&mut self, tok: Tok) -> Tok {
        self.pos += 1;
        tok
    }

    pub(super) fn word(&mut self) -> Tok {
        let start = self.pos;
        let len = self.src.as_bytes()[start..]
            .iter()
            .take_while(|&&b| is_field_byte(b))
            .count();
        self.pos += len;
        Keyword::parse(&self.src[start..self.pos]).map_or(Tok::Field, Tok::Keyword)
    }

    pub(super) fn operator(&mut self) -> Result<Tok, FilterError> {
        let (op, len) = match &self.src.as_bytes()[self.pos..] {
            [b'=', b'=', ..] => (CmpOp::Eq, 2),
            [b'=', ..] => (CmpOp::Eq, 1),
            [b'!', b'=', ..] => (CmpOp::Ne, 2),
            [b'<', b'=', ..] => (CmpOp::Le, 2),
            [b'<', ..] => (CmpOp::Lt, 1),
            [b'>', b'=', ..] => (CmpOp::Ge, 2),
            [b'>', ..] => (CmpOp::Gt, 1),
            _ => {
                let message = "unexpected `!`; write `!=` for not-equal or `not` to negate";
                return Err(syntax(self.src, self.pos, message));
            }
        };
        self.pos += len;
        Ok(Tok::Op(op))
    }

    /// Lexes `-?digits(.digits)?([eE][+-]?digits)?`; the fraction or exponent makes it a float.
    pub(super) fn number(&mut self) -> Result<Tok, FilterError> {
        let (src, start) = (self.src, self.pos);
        let bytes = src.as_bytes();
        let mut end = start + usize::from(bytes[start] == b'-');
        let whole = count_digits(bytes, end);
        if whole == 0 {
            return Err(syntax(src, start, "expected a digit after `-`"));
        }
        end += whole;
        let mut is_float = false;
        let fraction = count_digits(bytes, end + 1);
        if bytes.get(end) == Some(&b'.') && fraction > 0 {
            end += 1 + fraction;
            is_float = true;
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
            let exponent = count_digits(bytes, end + 1 + sign);
            if exponent > 0 {
                end += 1 + sign + exponent;
                is_float = true;
            }
        }
        // `50abc`, `1.2.3` or `1e` must not split into a number and a field name.
        if bytes.get(end).is_some_and(|&b| is_field_byte(b)) {
            let bad = end
                + bytes[end..]
                    .iter()
                    .take_while(|&&b| is_field_byte(b))
                    .count();
            let message = format!("invalid number `{}`", clip(&src[start..bad]));
            return Err(syntax(src, start, message));
        }
        self.pos = end;
        number_token(src, start, &src[start..end], is_float)
    }

    pub(super) fn string(&mut self) -> Result<Tok, FilterError> {
        let open = self.pos;
        let body = open + 1;
        let mut text = String::new();
        let mut chars = self.src[body..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = body + i + 1;
                    return Ok(Tok::Str(text));
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => text.push(unescape(self.src, body + i, escaped)?),
                    None => break,
                },
                c => text.push(c),
            }
        }
        Err(syntax(
            self.src,
            open,
            "unterminated string: missing closing `\"`",
        ))
    }

    pub(super) fn unexpected_char(&self) -> FilterError {
        let c = self.src[self.pos..].chars().next().unwrap_or(' ');
        let message = if c == '\'' {
            "strings need double quotes, not `'`".to_string()
        } else {
            format!("unexpected character `{}`", c.escape_debug())
        };
        syntax(self.src, self.pos, message)
    }
}

pub(super) fn unescape(src: &str, at: usize, escaped: char) -> Result<char, FilterError> {
    match escaped {
        '"' => Ok('"'),
        '\\' => Ok('\\'),
        'n' => Ok('\n'),
        't' => Ok('\t'),
        other => {
            let message = format!(
                "unknown escape `\\{}` in string; use \\\", \\\\, \\n or \\t",
                other.escape_debug()
            );
            Err(syntax(src, at, message))
        }
    }
}

pub(super) fn number_token(
    src: &str,
    start: usize,
    text: &str,
    is_float: bool,
) -> Result<Tok, FilterError> {
    if is_float {
        // Rust's float parser saturates to infinity rather than failing, so check finiteness.
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Tok::Float(x)),
            _ => Err(syntax(
                src,
                start,
                format!("number `{}` is too large", clip(text)),
            )),
        }
    } else {
        text.parse::<i64>().map(Tok::Int).map_err(|_| {
            let message = format!(
                "integer `{}` does not fit in 64 bits; write it as a float such as 1e19",
                clip(text)
            );
            syntax(src, start, message)
        })
    }
}
