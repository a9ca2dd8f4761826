//! The filter parser: recursive descent with one token of lookahead and an explicit nesting
//! counter, building the [`Expr`] tree.

use super::*;

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) lexer: Lexer<'a>,
    pub(super) peek: Token,
    pub(super) depth: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn parse(src: &'a str) -> Result<Expr, FilterError> {
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

    pub(super) fn advance(&mut self) -> Result<Token, FilterError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.peek, next))
    }

    pub(super) fn at_keyword(&self, keyword: Keyword) -> bool {
        self.peek.tok == Tok::Keyword(keyword)
    }

    pub(super) fn text(&self, token: &Token) -> &'a str {
        &self.src[token.start..token.end]
    }

    pub(super) fn error_at_peek(&self, message: impl Into<String>) -> FilterError {
        syntax(self.src, self.peek.start, message)
    }

    /// "expected X, found Y" at the lookahead token, with an optional hint appended.
    pub(super) fn expected(&self, what: &str, hint: &str) -> FilterError {
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
    pub(super) fn enter(&mut self, at: usize) -> Result<(), FilterError> {
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
    pub(super) fn or_expr(&mut self) -> Result<Expr, FilterError> {
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
    pub(super) fn nots(&mut self) -> Result<usize, FilterError> {
        let mut count = 0;
        while self.at_keyword(Keyword::Not) {
            self.enter(self.peek.start)?;
            self.advance()?;
            count += 1;
        }
        Ok(count)
    }

    pub(super) fn negate(&mut self, mut expr: Expr, nots: usize) -> Expr {
        for _ in 0..nots {
            expr = Expr::Not(Box::new(expr));
        }
        self.depth -= nots;
        expr
    }

    pub(super) fn open_paren(&mut self) -> Result<Token, FilterError> {
        self.enter(self.peek.start)?;
        self.advance()
    }

    pub(super) fn close_paren(&mut self, open: &Token) -> Result<(), FilterError> {
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

    pub(super) fn condition(&mut self) -> Result<Expr, FilterError> {
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

    pub(super) fn comparison(&mut self, field: String, op: CmpOp) -> Result<Expr, FilterError> {
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

    pub(super) fn in_list(&mut self, field: String, negated: bool) -> Result<Expr, FilterError> {
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
    pub(super) fn literal(&mut self, context: &str) -> Result<Option<Literal>, FilterError> {
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
pub(super) fn flatten(mut items: Vec<Expr>, build: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        items.swap_remove(0)
    } else {
        build(items)
    }
}
