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

mod compile;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use compile::*;
use lexer::*;
use parser::*;
