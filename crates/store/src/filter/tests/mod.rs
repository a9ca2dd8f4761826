//! Tests of the filter language: parsing, errors, compilation against a schema and evaluation.

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
        "(", ")", "not ", " and ", " or ", " in ", "age", "dx", "is_train", "id", "\"", "\\", "=",
        "!", "<", ">=", ",", "1", "-", ".", "e", "5.5", " ", "null", "true", "é", "#", "\n",
        "\"mel\"", "'",
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

mod oracle;
