//! Payload filter expressions for vector search, such as `dx = "mel" and age >= 50`.
//!
//! A filter is parsed once into a [`Filter`], checked against a collection's [`Schema`] by
//! [`Filter::compile`], and the resulting [`CompiledFilter`] is evaluated per candidate row
//! through [`PayloadRow`], which lets the store read memory-mapped columns without allocating.
//!
//! ```text
//! filter    := and_expr ("or" and_expr)*
//! and_expr  := not_expr ("and" not_expr)*
//! not_expr  := "not" not_expr | primary
//! primary   := "(" filter ")"
//!            | FIELD OP literal
//!            | FIELD ["not"] "in" "(" literal ("," literal)* ")"
//! OP        := "=" | "==" | "!=" | "<" | "<=" | ">" | ">="
//! literal   := STRING | INT | FLOAT | "true" | "false" | "null"
//! FIELD     := [A-Za-z_][A-Za-z0-9_.-]*      (`id` is the record id)
//! ```
//!
//! Keywords (including `true`, `false` and `null`) are case-insensitive, so they cannot be used
//! as field names. `STRING` is double-quoted with the escapes `\"`, `\\`, `\n` and `\t`; `INT`
//! is a 64-bit integer such as `-7`; `FLOAT` has a fraction or exponent, such as `1.5` or `-2e3`.
//! Parentheses and `not` may nest at most [`MAX_DEPTH`] levels.
//!
//! Semantics: a comparison with a missing value is false, as in SQL, except `FIELD = null` and
//! `FIELD != null`, which test for a missing value. Ints and floats compare numerically and
//! exactly; strings compare by bytes; NaN compares false to everything. `not` inverts the whole
//! result of its operand, so `not (age > 50)` matches rows without an age.

use crate::privacy::Redacted;
use crate::schema::Schema;
use crate::value::{FieldType, Value};
use std::cmp::Ordering;
use std::fmt;

/// How deeply parentheses and `not` may nest. It bounds the parser's, compiler's and evaluator's
/// recursion, so hostile input cannot overflow the stack: the deepest allowed filter needs about
/// 100 KiB of stack in optimised builds and 400 KiB unoptimised, well within a 2 MiB thread.
pub const MAX_DEPTH: usize = 128;

/// Why a filter could not be parsed or compiled.
///
/// Columns are 1-based and counted in characters of the filter text.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum FilterError {
    /// The text does not follow the filter grammar.
    #[error("at column {column}: {message}")]
    Syntax { column: usize, message: String },
    /// Parentheses or `not` nest deeper than [`MAX_DEPTH`].
    #[error("at column {column}: nested deeper than {MAX_DEPTH} levels")]
    TooDeep { column: usize },
    /// The field is neither `id` nor a payload field of the schema.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// A literal does not fit the field's type; `literal` is the literal as written.
    /// A string literal shows as `<hidden>` unless verbose: it may be a patient's data.
    #[error("field `{field}` is {}, but {} is {}", .field_type.name(), shown_literal(.literal, .literal_type), with_article(.literal_type))]
    TypeMismatch {
        field: String,
        field_type: FieldType,
        literal: String,
        literal_type: FieldType,
    },
    /// `<`, `<=`, `>` or `>=` was applied to a bool field.
    #[error("field `{field}` is bool, so it cannot be compared with `{op}`; use `=` or `!=`")]
    Unordered { field: String, op: String },
}

/// String literals can hold payload values (names, notes), so messages redact them.
fn shown_literal(literal: &str, literal_type: &FieldType) -> String {
    match literal_type {
        FieldType::String => Redacted(literal).to_string(),
        _ => literal.to_string(),
    }
}

fn with_article(field_type: &FieldType) -> &'static str {
    match field_type {
        FieldType::String => "a string",
        FieldType::Int => "an int",
        FieldType::Float => "a float",
        FieldType::Bool => "a bool",
    }
}

/// A parsed filter. It keeps its source text for messages; [`Filter::compile`] binds it to a schema.
#[derive(Debug, Clone)]
pub struct Filter {
    source: String,
    expr: Expr,
}

impl Filter {
    /// Parses a filter expression. Never panics; errors name the column where parsing stopped.
    ///
    /// ```
    /// use medvec_store::filter::Filter;
    ///
    /// let filter = Filter::parse(r#"dx = "mel" and (age >= 50 or localization in ("back", "trunk"))"#)?;
    /// assert!(filter.source().starts_with("dx"));
    ///
    /// let error = Filter::parse("age >=").unwrap_err();
    /// assert_eq!(error.to_string(), "at column 7: expected a value after `>=`, found end of input");
    /// # Ok::<(), medvec_store::filter::FilterError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let expr = Parser::parse(text)?;
        Ok(Filter {
            source: text.to_string(),
            expr,
        })
    }

    /// Resolves field names against the schema into payload column indices, checks literal types
    /// (an int literal against a float field is fine; a string literal against an int field is an
    /// error naming the field), returns a compiled form for fast evaluation.
    ///
    /// `id` always names the record id, a string. Ordering a bool field (`is_train < true`) is an
    /// error. A filter can be compiled against several schemas; each result is independent.
    pub fn compile(&self, schema: &Schema) -> Result<CompiledFilter, FilterError> {
        let compiler = Compiler {
            schema,
            source: &self.source,
        };
        Ok(CompiledFilter {
            root: compiler.node(&self.expr)?,
        })
    }

    /// The text the filter was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A filter bound to a schema, ready to evaluate against rows.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Node,
}

impl CompiledFilter {
    /// Whether the row satisfies the filter.
    pub fn matches(&self, row: &dyn PayloadRow) -> bool {
        self.root.eval(row)
    }
}

/// Row access used during evaluation, so the store can evaluate over memory-mapped columns
/// without allocating.
pub trait PayloadRow {
    /// The record id, which filters reach through the field name `id`.
    fn id(&self) -> &str;
    /// Value of payload column `index` (index into schema.payload).
    fn value(&self, index: usize) -> ValueRef<'_>;
}

/// A borrowed payload value. `Null` stands for a missing value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(x) => ValueRef::Float(*x),
            Value::String(s) => ValueRef::Str(s),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree, shared by parsing and compiling.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    /// Applies the operator to a comparison result; `None` (missing, NaN or mismatched types)
    /// fails every operator, which gives SQL's "comparison with unknown is false".
    fn holds(self, ordering: Option<Ordering>) -> bool {
        let Some(ordering) = ordering else {
            return false;
        };
        match self {
            CmpOp::Eq => ordering.is_eq(),
            CmpOp::Ne => ordering.is_ne(),
            CmpOp::Lt => ordering.is_lt(),
            CmpOp::Le => ordering.is_le(),
            CmpOp::Gt => ordering.is_gt(),
            CmpOp::Ge => ordering.is_ge(),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

/// A non-null literal. `null` never gets this far: the parser turns `= null` into `IsNull`.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
}

impl Lit {
    fn field_type(&self) -> FieldType {
        match self {
            Lit::Bool(_) => FieldType::Bool,
            Lit::Int(_) => FieldType::Int,
            Lit::Float(_) => FieldType::Float,
            Lit::Str(_) => FieldType::String,
        }
    }
}

/// A literal with its byte range in the source, so type errors can quote it as written.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    lit: Lit,
    span: (usize, usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// Two or more operands; chains stay flat so long `or` lists do not deepen the tree.
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        field: String,
        op: CmpOp,
        value: Literal,
    },
    IsNull {
        field: String,
        negated: bool,
    },
    In {
        field: String,
        negated: bool,
        values: Vec<Literal>,
    },
}

// ---------------------------------------------------------------------------------------------
// Lexer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
    In,
    True,
    False,
    Null,
}

impl Keyword {
    fn parse(word: &str) -> Option<Keyword> {
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
enum Tok {
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
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

fn is_field_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_field_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn count_digits(bytes: &[u8], from: usize) -> usize {
    bytes.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|b| b.is_ascii_digit()).count()
    })
}

impl<'a> Lexer<'a> {
    fn next_token(&mut self) -> Result<Token, FilterError> {
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

    fn skip_whitespace(&mut self) {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    fn punct(&mut self, tok: Tok) -> Tok {
        self.pos += 1;
        tok
    }

    fn word(&mut self) -> Tok {
        let start = self.pos;
        let len = self.src.as_bytes()[start..]
            .iter()
            .take_while(|&&b| is_field_byte(b))
            .count();
        self.pos += len;
        Keyword::parse(&self.src[start..self.pos]).map_or(Tok::Field, Tok::Keyword)
    }

    fn operator(&mut self) -> Result<Tok, FilterError> {
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
    fn number(&mut self) -> Result<Tok, FilterError> {
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

    fn string(&mut self) -> Result<Tok, FilterError> {
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

    fn unexpected_char(&self) -> FilterError {
        let c = self.src[self.pos..].chars().next().unwrap_or(' ');
        let message = if c == '\'' {
            "strings need double quotes, not `'`".to_string()
        } else {
            format!("unexpected character `{}`", c.escape_debug())
        };
        syntax(self.src, self.pos, message)
    }
}

fn unescape(src: &str, at: usize, escaped: char) -> Result<char, FilterError> {
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

fn number_token(src: &str, start: usize, text: &str, is_float: bool) -> Result<Tok, FilterError> {
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

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent with one token of lookahead and an explicit nesting counter.

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    peek: Token,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn parse(src: &'a str) -> Result<Expr, FilterError> {
        if src.trim().is_empty() {
            let message = "the filter is empty; write a condition such as `age >= 50`";
            return Err(syntax(src, src.len(), message));
        }
        let mut lexer = Lexer { src, pos: 0 };
        let peek = lexer.next_token()?;
        let mut parser = Parser {
            src,
            lexer,
            peek,
            depth: 0,
        };
        let expr = parser.or_expr()?;
        match parser.peek.tok {
            Tok::End => Ok(expr),
            Tok::RParen => Err(parser.error_at_peek("`)` has no matching `(`")),
            _ => Err(parser.expected("`and`, `or` or the end of the filter", "")),
        }
    }

    fn advance(&mut self) -> Result<Token, FilterError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.peek, next))
    }

    fn at_keyword(&self, keyword: Keyword) -> bool {
        self.peek.tok == Tok::Keyword(keyword)
    }

    fn text(&self, token: &Token) -> &'a str {
        &self.src[token.start..token.end]
    }

    fn error_at_peek(&self, message: impl Into<String>) -> FilterError {
        syntax(self.src, self.peek.start, message)
    }

    /// "expected X, found Y" at the lookahead token, with an optional hint appended.
    fn expected(&self, what: &str, hint: &str) -> FilterError {
        let found = match self.peek.tok {
            Tok::End => "end of input".to_string(),
            Tok::Str(_) => format!(
                "a string {}",
                Redacted(format!("`{}`", clip(self.text(&self.peek))))
            ),
            _ => format!("`{}`", clip(self.text(&self.peek))),
        };
        self.error_at_peek(format!("expected {what}, found {found}{hint}"))
    }

    /// Counts one level of `(` or `not`; the limit keeps recursion bounded.
    fn enter(&mut self, at: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::TooDeep {
                column: column(self.src, at),
            });
        }
        Ok(())
    }

    /// Parses `or`-separated `and` chains of possibly negated operands, up to a `)` or the end.
    ///
    /// This is the only recursive parsing function, and it recurses only for `(`: chains and runs
    /// of `not` are loops. One frame per parenthesis keeps the stack needed for [`MAX_DEPTH`]
    /// small even in unoptimised builds, where every frame is large.
    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let mut ors = Vec::new();
        let mut ands = Vec::new();
        loop {
            let nots = self.nots()?;
            let operand = if self.peek.tok == Tok::LParen {
                let open = self.open_paren()?;
                let inner = self.or_expr()?;
                self.close_paren(&open)?;
                inner
            } else {
                self.condition()?
            };
            ands.push(self.negate(operand, nots));
            if self.at_keyword(Keyword::And) {
                self.advance()?;
                continue;
            }
            ors.push(flatten(std::mem::take(&mut ands), Expr::And));
            if !self.at_keyword(Keyword::Or) {
                return Ok(flatten(ors, Expr::Or));
            }
            self.advance()?;
        }
    }

    /// Consumes a run of `not`, each counting as one nesting level until its operand is parsed.
    fn nots(&mut self) -> Result<usize, FilterError> {
        let mut count = 0;
        while self.at_keyword(Keyword::Not) {
            self.enter(self.peek.start)?;
            self.advance()?;
            count += 1;
        }
        Ok(count)
    }

    fn negate(&mut self, mut expr: Expr, nots: usize) -> Expr {
        for _ in 0..nots {
            expr = Expr::Not(Box::new(expr));
        }
        self.depth -= nots;
        expr
    }

    fn open_paren(&mut self) -> Result<Token, FilterError> {
        self.enter(self.peek.start)?;
        self.advance()
    }

    fn close_paren(&mut self, open: &Token) -> Result<(), FilterError> {
        if self.peek.tok != Tok::RParen {
            let what = format!(
                "`)` to close the `(` at column {}",
                column(self.src, open.start)
            );
            return Err(self.expected(&what, ""));
        }
        self.advance()?;
        self.depth -= 1;
        Ok(())
    }

    fn condition(&mut self) -> Result<Expr, FilterError> {
        if self.peek.tok != Tok::Field {
            return Err(self.expected("a field name, `not` or `(`", ""));
        }
        let field_token = self.advance()?;
        let field = self.text(&field_token).to_string();
        match self.peek.tok {
            Tok::Op(op) => self.comparison(field, op),
            Tok::Keyword(Keyword::In) => {
                self.advance()?;
                self.in_list(field, false)
            }
            Tok::Keyword(Keyword::Not) => {
                self.advance()?;
                if !self.at_keyword(Keyword::In) {
                    return Err(self.expected(&format!("`in` after `{field} not`"), ""));
                }
                self.advance()?;
                self.in_list(field, true)
            }
            _ => {
                let what = format!("an operator (=, !=, <, <=, >, >=, in, not in) after `{field}`");
                Err(self.expected(&what, ""))
            }
        }
    }

    fn comparison(&mut self, field: String, op: CmpOp) -> Result<Expr, FilterError> {
        let op_token = self.advance()?;
        let op_text = self.text(&op_token);
        let value_start = self.peek.start;
        match self.literal(&format!("after `{op_text}`"))? {
            Some(value) => Ok(Expr::Compare { field, op, value }),
            None if !op.is_ordering() => Ok(Expr::IsNull {
                field,
                negated: op == CmpOp::Ne,
            }),
            None => {
                let message =
                    format!("`{op_text}` cannot compare with null; use `= null` or `!= null`");
                Err(syntax(self.src, value_start, message))
            }
        }
    }

    fn in_list(&mut self, field: String, negated: bool) -> Result<Expr, FilterError> {
        if self.peek.tok != Tok::LParen {
            return Err(self.expected("`(` after `in`", ""));
        }
        self.advance()?;
        if self.peek.tok == Tok::RParen {
            return Err(self.error_at_peek("the `in` list is empty"));
        }
        let mut values = Vec::new();
        loop {
            let value_start = self.peek.start;
            let Some(value) = self.literal("in the `in` list")? else {
                let message =
                    format!("null cannot be in an `in` list; test it with `{field} = null`");
                return Err(syntax(self.src, value_start, message));
            };
            values.push(value);
            match self.peek.tok {
                Tok::Comma => self.advance()?,
                Tok::RParen => break,
                _ => return Err(self.expected("`,` or `)` in the `in` list", "")),
            };
        }
        self.advance()?;
        Ok(Expr::In {
            field,
            negated,
            values,
        })
    }

    /// Parses a literal; `None` stands for `null`.
    fn literal(&mut self, context: &str) -> Result<Option<Literal>, FilterError> {
        let lit = match &self.peek.tok {
            Tok::Str(s) => Some(Lit::Str(s.as_str().into())),
            Tok::Int(i) => Some(Lit::Int(*i)),
            Tok::Float(x) => Some(Lit::Float(*x)),
            Tok::Keyword(Keyword::True) => Some(Lit::Bool(true)),
            Tok::Keyword(Keyword::False) => Some(Lit::Bool(false)),
            Tok::Keyword(Keyword::Null) => None,
            Tok::Field => {
                let hint = format!(
                    "; strings need double quotes, as in \"{}\"",
                    clip(self.text(&self.peek))
                );
                return Err(self.expected(&format!("a value {context}"), &hint));
            }
            _ => return Err(self.expected(&format!("a value {context}"), "")),
        };
        let token = self.advance()?;
        Ok(lit.map(|lit| Literal {
            lit,
            span: (token.start, token.end),
        }))
    }
}

/// A chain of one operand is just that operand.
fn flatten(mut items: Vec<Expr>, build: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        items.swap_remove(0)
    } else {
        build(items)
    }
}

fn syntax(src: &str, at: usize, message: impl Into<String>) -> FilterError {
    FilterError::Syntax {
        column: column(src, at),
        message: message.into(),
    }
}

/// The 1-based character column of byte offset `at`.
fn column(src: &str, at: usize) -> usize {
    src.char_indices().take_while(|&(i, _)| i < at).count() + 1
}

/// Shortens echoed input, because a message quoting a megabyte of digits helps nobody.
fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Compiler: binds field names to columns and checks literal types once, up front.

#[derive(Debug, Clone, Copy)]
enum Column {
    Id,
    Payload(usize),
}

impl Column {
    fn read(self, row: &dyn PayloadRow) -> ValueRef<'_> {
        match self {
            Column::Id => ValueRef::Str(row.id()),
            Column::Payload(index) => row.value(index),
        }
    }
}

/// The values of an `in` list. Strings are sorted for binary search, since string lists
/// (diagnoses, sites) are the long ones.
#[derive(Debug, Clone)]
enum Set {
    Strs(Vec<Box<str>>),
    Other(Vec<Lit>),
}

impl Set {
    fn new(lits: Vec<Lit>) -> Set {
        if !lits.iter().all(|lit| matches!(lit, Lit::Str(_))) {
            return Set::Other(lits);
        }
        let mut strs: Vec<Box<str>> = lits
            .into_iter()
            .filter_map(|lit| match lit {
                Lit::Str(s) => Some(s),
                _ => None,
            })
            .collect();
        strs.sort_unstable();
        strs.dedup();
        Set::Strs(strs)
    }

    /// Membership, or `None` when the value is missing or not comparable with the list.
    fn contains(&self, value: ValueRef<'_>) -> Option<bool> {
        match (self, value) {
            (Set::Strs(strs), ValueRef::Str(s)) => {
                Some(strs.binary_search_by(|item| (**item).cmp(s)).is_ok())
            }
            (Set::Strs(_), _) => None,
            (Set::Other(lits), value) => {
                let orderings = lits.iter().filter_map(|lit| compare(value, lit));
                let mut comparable = false;
                for ordering in orderings {
                    if ordering.is_eq() {
                        return Some(true);
                    }
                    comparable = true;
                }
                comparable.then_some(false)
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    IsNull {
        column: Column,
        negated: bool,
    },
    Compare {
        column: Column,
        op: CmpOp,
        value: Lit,
    },
    In {
        column: Column,
        negated: bool,
        set: Set,
    },
}

impl Node {
    /// Recursion depth is bounded by the parser's nesting limit, and `and`/`or` chains are flat.
    fn eval(&self, row: &dyn PayloadRow) -> bool {
        match self {
            Node::Or(items) => Node::any(items, row, true),
            Node::And(items) => !Node::any(items, row, false),
            Node::Not(inner) => !inner.eval(row),
            Node::IsNull { column, negated } => {
                matches!(column.read(row), ValueRef::Null) != *negated
            }
            Node::Compare { column, op, value } => op.holds(compare(column.read(row), value)),
            Node::In {
                column,
                negated,
                set,
            } => set
                .contains(column.read(row))
                .is_some_and(|found| found != *negated),
        }
    }

    /// Whether any item evaluates to `wanted`, stopping at the first. A plain loop rather than
    /// `Iterator::any`, whose adaptor frames would multiply stack use in unoptimised builds.
    fn any(items: &[Node], row: &dyn PayloadRow, wanted: bool) -> bool {
        for item in items {
            if item.eval(row) == wanted {
                return true;
            }
        }
        false
    }
}

/// Orders a row value against a literal; `None` when either side cannot be compared.
fn compare(value: ValueRef<'_>, lit: &Lit) -> Option<Ordering> {
    match (value, lit) {
        (ValueRef::Int(a), Lit::Int(b)) => Some(a.cmp(b)),
        (ValueRef::Int(a), Lit::Float(b)) => cmp_int_float(a, *b),
        (ValueRef::Float(a), Lit::Int(b)) => cmp_int_float(*b, a).map(Ordering::reverse),
        (ValueRef::Float(a), Lit::Float(b)) => a.partial_cmp(b),
        (ValueRef::Str(a), Lit::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (ValueRef::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Compares exactly: casting the int to f64 would round above 2^53 and call unequal values equal.
fn cmp_int_float(int: i64, float: f64) -> Option<Ordering> {
    // 2^63 is exactly representable; floats at or beyond it lie outside i64's range.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if float.is_nan() {
        return None;
    }
    if float >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if float < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = float.trunc();
    // `whole` is integral and inside [-2^63, 2^63), so the cast is exact; the fraction breaks ties.
    let by_whole = int.cmp(&(whole as i64));
    let by_fraction = 0.0_f64
        .partial_cmp(&(float - whole))
        .unwrap_or(Ordering::Equal);
    Some(by_whole.then(by_fraction))
}

struct Compiler<'a> {
    schema: &'a Schema,
    source: &'a str,
}

impl Compiler<'_> {
    /// Recursion follows the tree, whose depth the parser bounds. Leaves are compiled in helper
    /// functions so their temporaries do not enlarge this recursive frame.
    fn node(&self, expr: &Expr) -> Result<Node, FilterError> {
        match expr {
            Expr::Or(items) => Ok(Node::Or(self.nodes(items)?)),
            Expr::And(items) => Ok(Node::And(self.nodes(items)?)),
            Expr::Not(inner) => Ok(Node::Not(Box::new(self.node(inner)?))),
            Expr::IsNull { field, negated } => self.is_null(field, *negated),
            Expr::Compare { field, op, value } => self.comparison(field, *op, value),
            Expr::In {
                field,
                negated,
                values,
            } => self.in_list(field, *negated, values),
        }
    }

    /// A plain loop: in unoptimised builds `collect` adds several large frames per tree level.
    fn nodes(&self, items: &[Expr]) -> Result<Vec<Node>, FilterError> {
        let mut nodes = Vec::with_capacity(items.len());
        for item in items {
            nodes.push(self.node(item)?);
        }
        Ok(nodes)
    }

    /// `id` is the record id; every other name must be a payload field.
    fn column(&self, field: &str) -> Result<(Column, FieldType), FilterError> {
        if field == "id" {
            return Ok((Column::Id, FieldType::String));
        }
        let index = self
            .schema
            .payload_index(field)
            .ok_or_else(|| FilterError::UnknownField(field.to_string()))?;
        Ok((
            Column::Payload(index),
            self.schema.payload[index].field_type,
        ))
    }

    fn is_null(&self, field: &str, negated: bool) -> Result<Node, FilterError> {
        let (column, _) = self.column(field)?;
        Ok(Node::IsNull { column, negated })
    }

    fn comparison(&self, field: &str, op: CmpOp, value: &Literal) -> Result<Node, FilterError> {
        let (column, field_type) = self.column(field)?;
        let value = self.check(field, field_type, value)?;
        if field_type == FieldType::Bool && op.is_ordering() {
            return Err(FilterError::Unordered {
                field: field.to_string(),
                op: op.to_string(),
            });
        }
        Ok(Node::Compare { column, op, value })
    }

    fn in_list(&self, field: &str, negated: bool, values: &[Literal]) -> Result<Node, FilterError> {
        let (column, field_type) = self.column(field)?;
        let lits = values
            .iter()
            .map(|value| self.check(field, field_type, value))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Node::In {
            column,
            negated,
            set: Set::new(lits),
        })
    }

    /// Ints and floats mix freely because they compare numerically; other types must match.
    fn check(
        &self,
        field: &str,
        field_type: FieldType,
        value: &Literal,
    ) -> Result<Lit, FilterError> {
        let literal_type = value.lit.field_type();
        let numeric = |t| matches!(t, FieldType::Int | FieldType::Float);
        if literal_type == field_type || (numeric(literal_type) && numeric(field_type)) {
            return Ok(value.lit.clone());
        }
        let (start, end) = value.span;
        Err(FilterError::TypeMismatch {
            field: field.to_string(),
            field_type,
            literal: clip(&self.source[start..end]),
            literal_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{PayloadField, VectorField};

    const DX: usize = 0;
    const AGE: usize = 1;
    const SCORE: usize = 2;
    const TRAIN: usize = 3;
    const SEX: usize = 4;
    const LOC: usize = 5;
    const SIZE: usize = 6;

    fn schema() -> Schema {
        let payload = [
            "dx:string",
            "age:int",
            "score:float",
            "is_train:bool",
            "sex:string",
            "localization:string",
            "lesion.size-mm:float",
        ];
        Schema {
            vectors: vec![VectorField::parse("image:4:cosine").unwrap()],
            payload: payload
                .iter()
                .map(|spec| PayloadField::parse(spec).unwrap())
                .collect(),
        }
    }

    struct Row {
        id: String,
        values: Vec<Value>,
    }

    impl PayloadRow for Row {
        fn id(&self) -> &str {
            &self.id
        }
        fn value(&self, index: usize) -> ValueRef<'_> {
            self.values
                .get(index)
                .map_or(ValueRef::Null, ValueRef::from)
        }
    }

    fn row(id: &str, fields: &[(usize, Value)]) -> Row {
        let mut values = vec![Value::Null; schema().payload.len()];
        for (index, value) in fields {
            values[*index] = value.clone();
        }
        Row {
            id: id.to_string(),
            values,
        }
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_string())
    }

    /// A melanoma case with every field set.
    fn full_row() -> Row {
        row(
            "ISIC_1",
            &[
                (DX, s("mel")),
                (AGE, Value::Int(70)),
                (SCORE, Value::Float(0.25)),
                (TRAIN, Value::Bool(true)),
                (SEX, s("male")),
                (LOC, s("back")),
                (SIZE, Value::Float(3.0)),
            ],
        )
    }

    fn compiled(text: &str) -> CompiledFilter {
        Filter::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .compile(&schema())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn matches(text: &str, row: &Row) -> bool {
        compiled(text).matches(row)
    }

    fn parse_err(text: &str) -> String {
        Filter::parse(text).unwrap_err().to_string()
    }

    fn compile_err(text: &str) -> String {
        Filter::parse(text)
            .unwrap()
            .compile(&schema())
            .unwrap_err()
            .to_string()
    }

    fn assert_cases(row: &Row, cases: &[(&str, bool)]) {
        for (text, want) in cases {
            assert_eq!(matches(text, row), *want, "{text}");
        }
    }

    #[test]
    fn compares_with_every_operator() {
        let r = row("a", &[(AGE, Value::Int(50))]);
        assert_cases(
            &r,
            &[
                ("age = 50", true),
                ("age == 50", true),
                ("age != 50", false),
                ("age != 51", true),
                ("age < 50", false),
                ("age <= 50", true),
                ("age > 49", true),
                ("age >= 51", false),
                ("age<=50", true),
                ("  age\t>=\n-3  ", true),
            ],
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let r = full_row();
        assert_cases(
            &r,
            &[
                (r#"dx = "mel" or age < 10 and sex = "female""#, true),
                (r#"(dx = "mel" or age < 10) and sex = "female""#, false),
                (r#"age < 10 and sex = "female" or dx = "mel""#, true),
                (r#"age < 10 and (sex = "female" or dx = "mel")"#, false),
            ],
        );
        let filter = Filter::parse("age = 1 or age = 2 and age = 3").unwrap();
        assert!(matches!(&filter.expr, Expr::Or(items) if matches!(items[1], Expr::And(_))));
    }

    #[test]
    fn not_binds_tighter_than_and() {
        let r = full_row();
        assert_cases(
            &r,
            &[
                (r#"not dx = "nv" and age < 10"#, false),
                (r#"not (dx = "nv" and age < 10)"#, true),
                (r#"not dx = "mel" or age > 10"#, true),
                (r#"not not dx = "mel""#, true),
            ],
        );
        let filter = Filter::parse("not age = 1 and age = 2").unwrap();
        assert!(matches!(&filter.expr, Expr::And(items) if matches!(items[0], Expr::Not(_))));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let r = full_row();
        assert_cases(
            &r,
            &[
                (r#"NOT dx = "nv" AND age >= 50 Or is_train = TRUE"#, true),
                (
                    r#"localization NOT IN ("face") aNd is_train != False"#,
                    true,
                ),
                ("dx = NULL", false),
            ],
        );
    }

    #[test]
    fn in_and_not_in() {
        let r = full_row();
        assert_cases(
            &r,
            &[
                (r#"localization in ("back", "trunk")"#, true),
                (r#"localization in ("face")"#, false),
                (r#"localization in ("back", "back", "a")"#, true),
                (r#"localization not in ("face", "scalp")"#, true),
                (r#"localization not in ("trunk", "back")"#, false),
                ("age in (70, 71)", true),
                ("age in (69.5, 70.0)", true),
                ("age not in (69.5, 71)", true),
                ("score in (0.25)", true),
                ("score in (1)", false),
                ("is_train in (true)", true),
                ("is_train not in (true)", false),
                (r#"id in ("ISIC_9", "ISIC_1")"#, true),
            ],
        );
    }

    #[test]
    fn missing_values_fail_comparisons_but_match_null_tests() {
        let empty = row("b", &[]);
        assert_cases(
            &empty,
            &[
                (r#"dx = "mel""#, false),
                (r#"dx != "mel""#, false),
                ("age < 5", false),
                ("age >= 5", false),
                (r#"localization in ("back")"#, false),
                (r#"localization not in ("back")"#, false),
                ("is_train = true", false),
                ("is_train != true", false),
                ("dx = null", true),
                ("dx == null", true),
                ("dx != null", false),
                (r#"not (dx = "mel")"#, true),
                (r#"not dx != "mel""#, true),
                ("not age > 50", true),
            ],
        );
        let full = full_row();
        assert_cases(
            &full,
            &[
                ("dx = null", false),
                ("dx != null", true),
                ("id = null", false),
                ("id != null", true),
            ],
        );
    }

    #[test]
    fn ints_and_floats_compare_numerically() {
        let r = row(
            "a",
            &[
                (AGE, Value::Int(50)),
                (SCORE, Value::Float(2.0)),
                (SIZE, Value::Int(3)),
            ],
        );
        assert_cases(
            &r,
            &[
                ("age > 49.5", true),
                ("age < 50.5", true),
                ("age = 50.0", true),
                ("age > 50.0", false),
                ("age > 5e1", false),
                ("score = 2", true),
                ("score != 2", false),
                ("score > 1", true),
                ("score < 3", true),
                // A row may hold an int in a float column; it still compares numerically.
                ("lesion.size-mm = 3.0", true),
                ("lesion.size-mm >= 3", true),
                ("lesion.size-mm < 2.5", false),
            ],
        );
    }

    #[test]
    fn int_float_comparison_is_exact_beyond_2_pow_53() {
        use Ordering::*;
        let two_53 = 9_007_199_254_740_992.0;
        assert_eq!(cmp_int_float(9_007_199_254_740_993, two_53), Some(Greater));
        let two_63 = (1_u64 << 63) as f64;
        assert_eq!(cmp_int_float(i64::MAX, two_63), Some(Less));
        assert_eq!(cmp_int_float(i64::MIN, -two_63), Some(Equal));
        assert_eq!(cmp_int_float(i64::MIN, -1e19), Some(Greater));
        assert_eq!(cmp_int_float(-3, -2.5), Some(Less));
        assert_eq!(cmp_int_float(-2, -2.5), Some(Greater));
        assert_eq!(cmp_int_float(2, 2.5), Some(Less));
        assert_eq!(cmp_int_float(3, 2.5), Some(Greater));
        assert_eq!(cmp_int_float(0, -0.0), Some(Equal));
        assert_eq!(cmp_int_float(0, f64::NAN), None);
        assert_eq!(cmp_int_float(0, f64::INFINITY), Some(Less));
        assert_eq!(cmp_int_float(0, f64::NEG_INFINITY), Some(Greater));

        let r = row("a", &[(AGE, Value::Int(9_007_199_254_740_993))]);
        assert!(matches("age > 9007199254740992.0", &r));
        assert!(!matches("age = 9007199254740992.0", &r));
    }

    #[test]
    fn nan_compares_false_to_everything() {
        let r = row("a", &[(SCORE, Value::Float(f64::NAN))]);
        for text in [
            "score = 1",
            "score != 1",
            "score < 1",
            "score >= 1",
            "score in (1)",
            "score not in (1)",
        ] {
            assert!(!matches(text, &r), "{text}");
        }
        assert!(matches("score != null", &r));
    }

    #[test]
    fn strings_compare_by_bytes() {
        let cases = [
            ("B", r#"dx < "a""#),
            ("é", r#"dx > "z""#),
            ("", r#"dx < "a""#),
            ("me", r#"dx < "mel""#),
        ];
        for (value, text) in cases {
            assert!(
                matches(text, &row("a", &[(DX, s(value))])),
                "{value:?} {text}"
            );
        }
        assert!(matches(r#"dx >= "mel""#, &full_row()));
        assert!(!matches(r#"dx = "Mel""#, &full_row()));
    }

    #[test]
    fn string_escapes_are_decoded() {
        let r = row("a", &[(DX, s("a\"b\\c\nd\te")), (SEX, s("café"))]);
        assert!(matches(r#"dx = "a\"b\\c\nd\te""#, &r));
        assert!(matches(r#"sex = "café""#, &r));
        assert!(
            matches("dx = \"a\\\"b\\\\c\nd\te\"", &r),
            "raw newline and tab are allowed"
        );
    }

    #[test]
    fn id_refers_to_the_record_id() {
        let r = full_row();
        assert_cases(
            &r,
            &[
                (r#"id = "ISIC_1""#, true),
                (r#"id < "ISIC_2""#, true),
                (r#"id != "ISIC_1""#, false),
            ],
        );
        assert_eq!(
            compile_err("id = 5"),
            "field `id` is string, but 5 is an int"
        );
    }

    #[test]
    fn messages_hide_string_literals_which_may_be_patient_data() {
        let misplaced = parse_err(r#"dx = "mel" "Jane Doe""#);
        assert!(misplaced.contains("a string <hidden>"), "{misplaced}");
        assert!(!misplaced.contains("Jane"), "{misplaced}");
        assert!(!compile_err(r#"age = "Jane Doe""#).contains("Jane"));
    }

    #[test]
    fn type_errors_name_the_field() {
        let cases = [
            (
                r#"age >= "x""#,
                "field `age` is int, but <hidden> is a string",
            ),
            ("dx = 5", "field `dx` is string, but 5 is an int"),
            ("score = true", "field `score` is float, but true is a bool"),
            ("is_train = 1", "field `is_train` is bool, but 1 is an int"),
            (
                "is_train = -1.5e0",
                "field `is_train` is bool, but -1.5e0 is a float",
            ),
            (
                r#"localization in ("back", 3)"#,
                "field `localization` is string, but 3 is an int",
            ),
            (
                r#"dx = "mel" or not (age in (1, "2"))"#,
                "field `age` is int, but <hidden> is a string",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(compile_err(text), message, "{text}");
        }
        let error = Filter::parse("dx = 5")
            .unwrap()
            .compile(&schema())
            .unwrap_err();
        assert!(matches!(error, FilterError::TypeMismatch { ref field, .. } if field == "dx"));
    }

    #[test]
    fn ordering_a_bool_is_an_error() {
        assert_eq!(
            compile_err("is_train < true"),
            "field `is_train` is bool, so it cannot be compared with `<`; use `=` or `!=`"
        );
        assert!(compile_err("is_train >= false").contains("`>=`"));
        assert!(matches(
            "is_train = true and is_train != false",
            &full_row()
        ));
    }

    #[test]
    fn unknown_fields_are_reported() {
        for text in [
            "agee > 3",
            r#"dx = "mel" or (not agee > 3)"#,
            "agee in (1)",
            "agee = null",
        ] {
            assert_eq!(compile_err(text), "unknown field `agee`", "{text}");
        }
        assert_eq!(
            compile_err("image = 1"),
            "unknown field `image`",
            "vector fields are not payload"
        );
        assert_eq!(
            compile_err("Age = 1"),
            "unknown field `Age`",
            "field names are case-sensitive"
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let cases = [
            (r#"dx = "mel" and age >="#, "at column 22: expected a value after `>=`, found end of input"),
            ("age >=", "at column 7: expected a value after `>=`, found end of input"),
            ("", "at column 1: the filter is empty; write a condition such as `age >= 50`"),
            ("  \n ", "at column 5: the filter is empty; write a condition such as `age >= 50`"),
            (
                "age",
                "at column 4: expected an operator (=, !=, <, <=, >, >=, in, not in) after `age`, found end of input",
            ),
            ("age > 5 5", "at column 9: expected `and`, `or` or the end of the filter, found `5`"),
            ("age > 5)", "at column 8: `)` has no matching `(`"),
            ("(age > 5", "at column 9: expected `)` to close the `(` at column 1, found end of input"),
            ("()", "at column 2: expected a field name, `not` or `(`, found `)`"),
            (
                "dx = mel",
                "at column 6: expected a value after `=`, found `mel`; strings need double quotes, as in \"mel\"",
            ),
            ("dx = 'mel'", "at column 6: strings need double quotes, not `'`"),
            (r#"dx = "mel"#, "at column 6: unterminated string: missing closing `\"`"),
            (r#"dx = "mel\"#, "at column 6: unterminated string: missing closing `\"`"),
            (r#"dx = "a\qb""#, r#"at column 8: unknown escape `\q` in string; use \", \\, \n or \t"#),
            ("age # 5", "at column 5: unexpected character `#`"),
            ("age ! 5", "at column 5: unexpected `!`; write `!=` for not-equal or `not` to negate"),
            ("age <> 5", "at column 6: expected a value after `<`, found `>`"),
            ("and", "at column 1: expected a field name, `not` or `(`, found `and`"),
            ("age > 5 and", "at column 12: expected a field name, `not` or `(`, found end of input"),
            ("age in 5", "at column 8: expected `(` after `in`, found `5`"),
            ("age in ()", "at column 9: the `in` list is empty"),
            ("age in (1, )", "at column 12: expected a value in the `in` list, found `)`"),
            ("age in (1 2)", "at column 11: expected `,` or `)` in the `in` list, found `2`"),
            ("age in (1", "at column 10: expected `,` or `)` in the `in` list, found end of input"),
            ("age not 5", "at column 9: expected `in` after `age not`, found `5`"),
            ("age < null", "at column 7: `<` cannot compare with null; use `= null` or `!= null`"),
            (r#"dx in ("a", null)"#, "at column 13: null cannot be in an `in` list; test it with `dx = null`"),
            ("age > 50abc", "at column 7: invalid number `50abc`"),
            ("age > 1.2.3", "at column 7: invalid number `1.2.3`"),
            ("age > 1e", "at column 7: invalid number `1e`"),
            ("age > 1.", "at column 7: invalid number `1.`"),
            ("age > - 5", "at column 7: expected a digit after `-`"),
            ("age > .5", "at column 7: unexpected character `.`"),
            (r#"dx = "é" and é"#, "at column 14: unexpected character `é`"),
            ("age > 5 and age\u{0}", "at column 16: unexpected character `\\0`"),
            ("5 = age", "at column 1: expected a field name, `not` or `(`, found `5`"),
        ];
        for (text, message) in cases {
            assert_eq!(parse_err(text), message, "{text:?}");
        }
    }

    #[test]
    fn huge_numbers_are_rejected_clearly() {
        assert_eq!(
            parse_err("age > 99999999999999999999999"),
            "at column 7: integer `99999999999999999999999` does not fit in 64 bits; \
             write it as a float such as 1e19"
        );
        assert_eq!(
            parse_err("score > 1e999"),
            "at column 9: number `1e999` is too large"
        );
        assert_eq!(
            parse_err("score > -1e999"),
            "at column 9: number `-1e999` is too large"
        );
        let long = format!("age > {}", "9".repeat(100_000));
        assert!(parse_err(&long).len() < 200, "echoed input is clipped");
        for text in [
            "age > -9223372036854775808",
            "age < 9223372036854775807",
            "score > 1e-999",
            "score < 1e22",
        ] {
            assert!(Filter::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn numbers_parse_in_all_forms() {
        let cases = [
            ("-2e3", Lit::Float(-2000.0)),
            ("1.5", Lit::Float(1.5)),
            ("1E+2", Lit::Float(100.0)),
            ("25e-1", Lit::Float(2.5)),
            ("-7", Lit::Int(-7)),
            ("0", Lit::Int(0)),
            ("007", Lit::Int(7)),
        ];
        for (text, want) in cases {
            let filter = Filter::parse(&format!("score = {text}")).unwrap();
            let Expr::Compare { value, .. } = &filter.expr else {
                panic!("{text}: {:?}", filter.expr);
            };
            assert_eq!(value.lit, want, "{text}");
        }
    }

    /// Runs `body` on a 1 MiB stack, half a default thread's, so unbounded recursion or grown
    /// frames would crash. The deepest allowed filter needs about 400 KiB unoptimised, 100 KiB
    /// optimised.
    fn on_small_stack(body: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(body)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn very_deep_nesting_is_rejected_without_overflow() {
        on_small_stack(|| {
            let inputs = [
                "(".repeat(10_000),
                format!("{}age > 1{}", "(".repeat(10_000), ")".repeat(10_000)),
                format!("{}age > 1", "not ".repeat(10_000)),
                format!("{}age > 1", "NOT ".repeat(10_000)),
                format!("{}age > 1", "not (".repeat(10_000)),
                format!("{}age > 1", "(age = 1 or ".repeat(10_000)),
            ];
            for text in &inputs {
                let error = Filter::parse(text).unwrap_err();
                assert!(matches!(error, FilterError::TooDeep { .. }), "{error}");
                assert!(
                    error.to_string().ends_with("nested deeper than 128 levels"),
                    "{error}"
                );
            }
            assert_eq!(
                parse_err(&"(".repeat(10_000)),
                "at column 129: nested deeper than 128 levels"
            );
        });
    }

    #[test]
    fn nesting_up_to_the_limit_parses_and_evaluates() {
        on_small_stack(|| {
            let r = row("a", &[(AGE, Value::Int(50))]);
            let parens = |n: usize| format!("{}age > 1{}", "(".repeat(n), ")".repeat(n));
            assert!(matches(&parens(MAX_DEPTH), &r));
            assert!(matches!(
                Filter::parse(&parens(MAX_DEPTH + 1)),
                Err(FilterError::TooDeep { .. })
            ));

            let nots = |n: usize| format!("{}age > 1", "not ".repeat(n));
            assert!(matches(&nots(MAX_DEPTH), &r));
            assert!(!matches(&nots(MAX_DEPTH - 1), &r));
            assert!(Filter::parse(&nots(MAX_DEPTH + 1)).is_err());

            let mixed = format!("{}age > 1{}", "not (".repeat(64), ")".repeat(64));
            assert!(matches(&mixed, &r));

            // Each level spends its two nesting units on three tree levels (`or`, `and`, `not`):
            // the deepest tree the limit allows. Every level negates, so 64 levels give `true`.
            let mut text = "age > 1".to_string();
            for _ in 0..MAX_DEPTH / 2 {
                text = format!(r#"(age > 1 and not {text} or dx = "x")"#);
            }
            assert!(matches(&text, &r));
            assert!(Filter::parse(&format!("not {text}")).is_err());
        });
    }

    #[test]
    fn long_flat_chains_do_not_deepen_the_tree() {
        on_small_stack(|| {
            let r = row("a", &[(AGE, Value::Int(50))]);
            let mut terms = vec!["age = 1"; 100_000];
            terms.push("age = 50");
            assert!(matches(&terms.join(" or "), &r));
            assert!(!matches(&terms.join(" and "), &r));
            let list: Vec<String> = (0..100_000).map(|i| format!("\"v{i}\"")).collect();
            let text = format!("id in ({})", list.join(","));
            assert!(matches(&text, &row("v99999", &[])));
            assert!(!matches(&text, &row("v100000", &[])));
        });
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    #[test]
    fn garbage_never_panics() {
        const PIECES: [&str; 30] = [
            "(", ")", "not ", " and ", " or ", " in ", "age", "dx", "is_train", "id", "\"", "\\",
            "=", "!", "<", ">=", ",", "1", "-", ".", "e", "5.5", " ", "null", "true", "é", "#",
            "\n", "\"mel\"", "'",
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let rows = [full_row(), row("b", &[])];
        let mut parsed = 0;
        for _ in 0..20_000 {
            let text: String = (0..rng.below(16)).map(|_| *rng.pick(&PIECES)).collect();
            let Ok(filter) = Filter::parse(&text) else {
                continue;
            };
            parsed += 1;
            if let Ok(compiled) = filter.compile(&schema()) {
                rows.iter().for_each(|r| {
                    compiled.matches(r);
                });
            }
        }
        assert!(parsed > 0, "the generator should hit some valid filters");
        for _ in 0..2_000 {
            let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            let _ = Filter::parse(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn value_ref_borrows_values() {
        assert_eq!(ValueRef::from(&Value::Null), ValueRef::Null);
        assert_eq!(ValueRef::from(&Value::Bool(true)), ValueRef::Bool(true));
        assert_eq!(ValueRef::from(&Value::Int(-4)), ValueRef::Int(-4));
        assert_eq!(ValueRef::from(&Value::Float(0.5)), ValueRef::Float(0.5));
        assert_eq!(ValueRef::from(&s("mel")), ValueRef::Str("mel"));
    }

    #[test]
    fn filter_keeps_its_source() {
        let text = r#" dx = "mel"  and age >= 50 "#;
        let filter = Filter::parse(text).unwrap();
        assert_eq!(filter.source(), text);
        assert_eq!(filter.to_string(), text);
    }

    const STRINGS: [&str; 10] = [
        "mel", "nv", "bkl", "", "Mel", "a\"b\\c", "male", "female", "back", "trunk",
    ];

    fn random_row(rng: &mut XorShift, schema: &Schema) -> Row {
        let values = schema
            .payload
            .iter()
            .map(|field| {
                if rng.chance(20) {
                    return Value::Null;
                }
                match field.field_type {
                    FieldType::String => s(STRINGS[rng.below(STRINGS.len())]),
                    FieldType::Int => Value::Int(rng.below(9) as i64 - 4),
                    FieldType::Float => Value::Float((rng.below(17) as f64 - 8.0) / 2.0),
                    FieldType::Bool => Value::Bool(rng.chance(50)),
                }
            })
            .collect();
        let id = *rng.pick(&["ISIC_1", "ISIC_2", "ISIC_10", "x"]);
        Row {
            id: id.to_string(),
            values,
        }
    }

    fn random_rows(count: usize) -> Vec<Row> {
        let schema = schema();
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        (0..count).map(|_| random_row(&mut rng, &schema)).collect()
    }

    fn str_at(row: &Row, index: usize) -> Option<&str> {
        match &row.values[index] {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    fn num_at(row: &Row, index: usize) -> Option<f64> {
        match row.values[index] {
            Value::Int(i) => Some(i as f64),
            Value::Float(x) => Some(x),
            _ => None,
        }
    }

    #[test]
    fn hand_written_filters_agree_with_an_oracle() {
        type Oracle = fn(&Row) -> bool;
        let cases: [(&str, Oracle); 6] = [
            (r#"dx = "mel" and age >= 0"#, |r| {
                str_at(r, DX) == Some("mel") && num_at(r, AGE).is_some_and(|a| a >= 0.0)
            }),
            (
                r#"not (sex = "male") or localization in ("back", "trunk")"#,
                |r| {
                    str_at(r, SEX) != Some("male")
                        || matches!(str_at(r, LOC), Some("back" | "trunk"))
                },
            ),
            ("score < 0.5", |r| num_at(r, SCORE).is_some_and(|x| x < 0.5)),
            ("is_train = true", |r| r.values[TRAIN] == Value::Bool(true)),
            ("age != null and not score > 1", |r| {
                num_at(r, AGE).is_some() && !num_at(r, SCORE).is_some_and(|x| x > 1.0)
            }),
            (r#"dx not in ("nv", "bkl") and age != 2 or id = "x""#, |r| {
                let dx_ok = str_at(r, DX).is_some_and(|dx| dx != "nv" && dx != "bkl");
                (dx_ok && num_at(r, AGE).is_some_and(|a| a != 2.0)) || r.id == "x"
            }),
        ];
        let rows = random_rows(400);
        for (text, oracle) in cases {
            let filter = compiled(text);
            let hits = rows.iter().filter(|r| filter.matches(*r)).count();
            assert!(
                hits > 0 && hits < rows.len(),
                "{text}: {hits} of {} rows match",
                rows.len()
            );
            for r in &rows {
                assert_eq!(
                    filter.matches(r),
                    oracle(r),
                    "{text} on {:?} {:?}",
                    r.id,
                    r.values
                );
            }
        }
    }

    /// A randomly generated filter, rendered to text and evaluated by `oracle` independently.
    /// Field index 0 is `id`; index k > 0 is payload column k - 1.
    #[derive(Debug)]
    enum Gen {
        Cmp(usize, CmpOp, Lit),
        Null(usize, bool),
        In(usize, bool, Vec<Lit>),
        Not(Box<Gen>),
        And(Vec<Gen>),
        Or(Vec<Gen>),
    }

    fn field_types(schema: &Schema) -> Vec<(String, FieldType)> {
        let payload = schema
            .payload
            .iter()
            .map(|f| (f.name.clone(), f.field_type));
        std::iter::once(("id".to_string(), FieldType::String))
            .chain(payload)
            .collect()
    }

    fn random_lit(rng: &mut XorShift, field_type: FieldType) -> Lit {
        match field_type {
            FieldType::String => Lit::Str((*rng.pick(&STRINGS)).into()),
            FieldType::Bool => Lit::Bool(rng.chance(50)),
            _ if rng.chance(50) => Lit::Int(rng.below(9) as i64 - 4),
            _ => Lit::Float((rng.below(17) as f64 - 8.0) / 2.0),
        }
    }

    fn random_leaf(rng: &mut XorShift, fields: &[(String, FieldType)]) -> Gen {
        let field = rng.below(fields.len());
        let field_type = fields[field].1;
        match rng.below(100) {
            0..=14 => Gen::Null(field, rng.chance(50)),
            15..=34 => {
                let lits = (0..1 + rng.below(3))
                    .map(|_| random_lit(rng, field_type))
                    .collect();
                Gen::In(field, rng.chance(50), lits)
            }
            _ => {
                let ops = [
                    CmpOp::Eq,
                    CmpOp::Ne,
                    CmpOp::Lt,
                    CmpOp::Le,
                    CmpOp::Gt,
                    CmpOp::Ge,
                ];
                let op = if field_type == FieldType::Bool {
                    ops[rng.below(2)]
                } else {
                    *rng.pick(&ops)
                };
                Gen::Cmp(field, op, random_lit(rng, field_type))
            }
        }
    }

    fn random_gen(rng: &mut XorShift, fields: &[(String, FieldType)], depth: usize) -> Gen {
        if depth == 0 || rng.chance(35) {
            return random_leaf(rng, fields);
        }
        let kind = rng.below(3);
        if kind == 0 {
            return Gen::Not(Box::new(random_gen(rng, fields, depth - 1)));
        }
        let children = (0..2 + rng.below(3))
            .map(|_| random_gen(rng, fields, depth - 1))
            .collect();
        if kind == 1 {
            Gen::And(children)
        } else {
            Gen::Or(children)
        }
    }

    fn render_lit(lit: &Lit) -> String {
        match lit {
            Lit::Bool(b) => b.to_string(),
            Lit::Int(i) => i.to_string(),
            Lit::Float(x) => format!("{x:?}"),
            Lit::Str(text) => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    }

    fn keyword(rng: &mut XorShift, word: &str) -> String {
        match rng.below(3) {
            0 => word.to_uppercase(),
            _ => word.to_string(),
        }
    }

    /// Renders with the fewest parentheses precedence allows (plus some redundant ones), so the
    /// parser's precedence is exercised.
    fn render(g: &Gen, fields: &[(String, FieldType)], rng: &mut XorShift) -> String {
        let text = match g {
            Gen::Cmp(f, op, lit) => {
                let op = if *op == CmpOp::Eq && rng.chance(30) {
                    "==".to_string()
                } else {
                    op.to_string()
                };
                format!("{} {op} {}", fields[*f].0, render_lit(lit))
            }
            Gen::Null(f, negated) => {
                format!(
                    "{} {} {}",
                    fields[*f].0,
                    if *negated { "!=" } else { "=" },
                    keyword(rng, "null")
                )
            }
            Gen::In(f, negated, lits) => {
                let not = if *negated {
                    keyword(rng, "not ")
                } else {
                    String::new()
                };
                let list: Vec<String> = lits.iter().map(render_lit).collect();
                format!(
                    "{} {not}{} ({})",
                    fields[*f].0,
                    keyword(rng, "in"),
                    list.join(", ")
                )
            }
            Gen::Not(inner) => {
                let inner_text = render(inner, fields, rng);
                let wrap = matches!(**inner, Gen::And(_) | Gen::Or(_));
                format!("{} {}", keyword(rng, "not"), paren_if(wrap, inner_text))
            }
            Gen::And(items) => join(items, "and", |item| matches!(item, Gen::Or(_)), fields, rng),
            Gen::Or(items) => join(items, "or", |_| false, fields, rng),
        };
        paren_if(rng.chance(5), text)
    }

    fn join(
        items: &[Gen],
        word: &str,
        needs_parens: fn(&Gen) -> bool,
        fields: &[(String, FieldType)],
        rng: &mut XorShift,
    ) -> String {
        let mut out = String::new();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out += &format!(" {} ", keyword(rng, word));
            }
            out += &paren_if(needs_parens(item), render(item, fields, rng));
        }
        out
    }

    fn paren_if(wrap: bool, text: String) -> String {
        if wrap {
            format!("({text})")
        } else {
            text
        }
    }

    fn oracle_value(row: &Row, field: usize) -> Value {
        if field == 0 {
            s(&row.id)
        } else {
            row.values[field - 1].clone()
        }
    }

    /// Orders a value against a literal; the test values are small halves, so f64 is exact.
    fn oracle_cmp(value: &Value, lit: &Lit) -> Option<Ordering> {
        match (value, lit) {
            (Value::String(a), Lit::Str(b)) => Some(a.as_str().cmp(b)),
            (Value::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
            (Value::Int(a), Lit::Int(b)) => Some(a.cmp(b)),
            (Value::Int(a), Lit::Float(b)) => (*a as f64).partial_cmp(b),
            (Value::Float(a), Lit::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Float(a), Lit::Float(b)) => a.partial_cmp(b),
            _ => None,
        }
    }

    fn oracle(g: &Gen, row: &Row) -> bool {
        match g {
            Gen::Cmp(f, op, lit) => match oracle_cmp(&oracle_value(row, *f), lit) {
                None => false,
                Some(o) => match op {
                    CmpOp::Eq => o == Ordering::Equal,
                    CmpOp::Ne => o != Ordering::Equal,
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Ge => o != Ordering::Less,
                },
            },
            Gen::Null(f, negated) => (oracle_value(row, *f) == Value::Null) != *negated,
            Gen::In(f, negated, lits) => {
                let value = oracle_value(row, *f);
                let found = lits
                    .iter()
                    .any(|lit| oracle_cmp(&value, lit) == Some(Ordering::Equal));
                value != Value::Null && found != *negated
            }
            Gen::Not(inner) => !oracle(inner, row),
            Gen::And(items) => items.iter().all(|item| oracle(item, row)),
            Gen::Or(items) => items.iter().any(|item| oracle(item, row)),
        }
    }

    #[test]
    fn random_filters_agree_with_an_oracle() {
        let schema = schema();
        let fields = field_types(&schema);
        let rows = random_rows(300);
        let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
        let (mut trues, mut falses) = (0, 0);
        for _ in 0..300 {
            let g = random_gen(&mut rng, &fields, 4);
            let text = render(&g, &fields, &mut rng);
            let filter = compiled(&text);
            for r in &rows {
                let want = oracle(&g, r);
                assert_eq!(
                    filter.matches(r),
                    want,
                    "{text}\non {:?} {:?}\nfrom {g:?}",
                    r.id,
                    r.values
                );
                if want {
                    trues += 1
                } else {
                    falses += 1
                }
            }
        }
        assert!(
            trues > 10_000 && falses > 10_000,
            "{trues} true, {falses} false"
        );
    }
}
