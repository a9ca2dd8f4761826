//! Random filters against an independent oracle: generated filters, rendered as text, parsed,
//! compiled and evaluated on random rows must give what a direct evaluation of the generated
//! tree gives.

use super::*;

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
            |r| str_at(r, SEX) != Some("male") || matches!(str_at(r, LOC), Some("back" | "trunk")),
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
