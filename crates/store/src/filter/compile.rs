//! The filter compiler and evaluator: binds field names to columns, checks literal types once,
//! up front, and evaluates the compiled [`Node`] tree per row.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) enum Column {
    Id,
    Payload(usize),
}

impl Column {
    pub(super) fn read(self, row: &dyn PayloadRow) -> ValueRef<'_> {
        match self {
            Column::Id => ValueRef::Str(row.id()),
            Column::Payload(index) => row.value(index),
        }
    }
}

/// The values of an `in` list. Strings are sorted for binary search, since string lists
/// (diagnoses, sites) are the long ones.
#[derive(Debug, Clone)]
pub(super) enum Set {
    Strs(Vec<Box<str>>),
    Other(Vec<Lit>),
}

impl Set {
    pub(super) fn new(lits: Vec<Lit>) -> Set {
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
    pub(super) fn contains(&self, value: ValueRef<'_>) -> Option<bool> {
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
pub(super) enum Node {
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
    pub(super) fn eval(&self, row: &dyn PayloadRow) -> bool {
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
    pub(super) fn any(items: &[Node], row: &dyn PayloadRow, wanted: bool) -> bool {
        for item in items {
            if item.eval(row) == wanted {
                return true;
            }
        }
        false
    }
}

/// Orders a row value against a literal; `None` when either side cannot be compared.
pub(super) fn compare(value: ValueRef<'_>, lit: &Lit) -> Option<Ordering> {
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
pub(super) fn cmp_int_float(int: i64, float: f64) -> Option<Ordering> {
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

pub(super) struct Compiler<'a> {
    pub(super) schema: &'a Schema,
    pub(super) source: &'a str,
}

impl Compiler<'_> {
    /// Recursion follows the tree, whose depth the parser bounds. Leaves are compiled in helper
    /// functions so their temporaries do not enlarge this recursive frame.
    pub(super) fn node(&self, expr: &Expr) -> Result<Node, FilterError> {
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
    pub(super) fn nodes(&self, items: &[Expr]) -> Result<Vec<Node>, FilterError> {
        let mut nodes = Vec::with_capacity(items.len());
        for item in items {
            nodes.push(self.node(item)?);
        }
        Ok(nodes)
    }

    /// `id` is the record id; every other name must be a payload field.
    pub(super) fn column(&self, field: &str) -> Result<(Column, FieldType), FilterError> {
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

    pub(super) fn is_null(&self, field: &str, negated: bool) -> Result<Node, FilterError> {
        let (column, _) = self.column(field)?;
        Ok(Node::IsNull { column, negated })
    }

    pub(super) fn comparison(
        &self,
        field: &str,
        op: CmpOp,
        value: &Literal,
    ) -> Result<Node, FilterError> {
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

    pub(super) fn in_list(
        &self,
        field: &str,
        negated: bool,
        values: &[Literal],
    ) -> Result<Node, FilterError> {
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
    pub(super) fn check(
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
