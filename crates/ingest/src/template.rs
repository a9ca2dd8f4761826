//! Metadata → clinical text templates (shared/method.md §2): the sentence a text encoder reads
//! for each case, built from the manifest's columns.
//!
//! Syntax, parsed once and rendered per row:
//!
//! - `{column}`: the cell's text. Numbers keep their text, except that a trailing `.0` is
//!   dropped (`45.0` renders `45`), because pandas writes integer columns with missing values
//!   as floats.
//! - `{column|default text}`: the default when the cell is missing or empty. Without a default,
//!   a missing or empty cell is an error naming the column and the slot's position.
//! - `{column:0=left,1=right|default}`: a value map. A value not in the map renders as itself,
//!   unless the map has a `*` entry, whose text replaces it with `$` standing for the value
//!   (`{comorbidities:0=none,*=with comorbidities: $|none}`). Map keys and texts cannot contain
//!   `,`, `=`, `|`, `{` or `}`.
//! - `{{` and `}}` are literal braces.
//!
//! ```
//! use medvec_ingest::template::Template;
//! let t = Template::parse("Age: {age|No data reported} years, {eye:1=right,2=left} eye.")?;
//! let row = |c: &str| match c { "age" => Some("45.0".to_string()), "eye" => Some("2".into()), _ => None };
//! assert_eq!(t.render(&row)?, "Age: 45 years, left eye.");
//! # Ok::<(), medvec_ingest::template::TemplateError>(())
//! ```

/// The HAM10000 sentence of the paper (shared/method.md §2).
pub const HAM10000: &str = "Patient diagnosed via {dx_type}. Age: {age|No data reported} years. Sex: {sex}. Localization: {localization}.";

/// The BRSET sentence of the paper (shared/method.md §2) over BRSET's column names.
///
/// Value maps follow the BRSET data dictionary as far as the method notes go: `patient_sex`
/// 1 = male, 2 = female; `exam_eye` 1 = right, 2 = left; `optic_disc`, `vessels`, `macula`
/// 1 = normal, 2 = abnormal; the condition columns 0 = absent, 1 = present; `insuline` 1 = yes
/// (also `yes`/`true`), anything else or missing = not using insulin; `comorbidities` 0 or
/// missing = none reported, any other text is quoted; `diabetes_time_y` missing = no duration
/// reported. Values outside a map render as themselves.
pub const BRSET: &str = concat!(
    "An image from the {exam_eye:1=right,2=left|unreported} eye of a ",
    "{patient_sex:1=male,2=female|unreported sex} patient, aged {patient_age|an unreported number of} years, ",
    "{comorbidities:0=with no comorbidities reported,*=with comorbidities: $|with no comorbidities reported}, ",
    "{diabetes_time_y:*=diabetes diagnosed for $ years|with no diabetes duration reported}, ",
    "{insuline:1=using insulin,yes=using insulin,true=using insulin,*=not using insulin|not using insulin}. ",
    "The optic disc is {optic_disc:1=normal,2=abnormal|not reported}, ",
    "vessels are {vessels:1=normal,2=abnormal|not reported}, ",
    "and the macula is {macula:1=normal,2=abnormal|not reported}. ",
    "Conditions include macular edema: {macular_edema:0=absent,1=present|not reported}, ",
    "scar: {scar:0=absent,1=present|not reported}, ",
    "nevus: {nevus:0=absent,1=present|not reported}, ",
    "amd: {amd:0=absent,1=present|not reported}, ",
    "vascular occlusion: {vascular_occlusion:0=absent,1=present|not reported}, ",
    "drusens: {drusens:0=absent,1=present|not reported}, ",
    "hemorrhage: {hemorrhage:0=absent,1=present|not reported}, ",
    "retinal detachment: {retinal_detachment:0=absent,1=present|not reported}, ",
    "myopic fundus: {myopic_fundus:0=absent,1=present|not reported}, ",
    "increased cup disc ratio: {increased_cup_disc:0=absent,1=present|not reported}, ",
    "and other conditions: {other:0=absent,1=present|not reported}."
);

/// A sentence from the non-identifying DICOM header attributes that DICOM ingest stores
/// (`crate::dicom::SAFE_TAGS`; PatientAge in whole years). Every slot has a default, because
/// archives often leave BodyPartExamined and ViewPosition empty.
pub const DICOM: &str = concat!(
    "{Modality|Unknown modality} image of the {BodyPartExamined|unspecified body part}, ",
    "{ViewPosition|unspecified} view, of a {PatientSex:M=male,F=female,O=other|unknown sex} ",
    "patient aged {PatientAge|unknown} years."
);

/// Template errors: where in the template (1-based character position) or which column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text does not parse.
    #[error("template, character {position}: {detail}")]
    Parse { position: usize, detail: String },
    /// A row lacks a value for a slot without a default.
    #[error("template, character {position}: column `{column}` is missing or empty and the slot has no default (write {{{column}|default text}})")]
    Missing { position: usize, column: String },
}

/// A parsed template. See the [module docs](self) for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// The text it was parsed from (recorded with the collection's text model).
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(Slot),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    column: String,
    map: Vec<(String, String)>,
    default: Option<String>,
    /// 1-based character position of the `{`.
    position: usize,
}

impl Template {
    /// Parses a template; errors give the character position.
    ///
    /// ```
    /// use medvec_ingest::template::Template;
    /// let err = Template::parse("Age: {age").unwrap_err();
    /// assert_eq!(err.to_string(), "template, character 6: `{` is never closed");
    /// ```
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let chars: Vec<char> = text.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            match (chars[i], chars.get(i + 1)) {
                ('{', Some('{')) | ('}', Some('}')) => {
                    literal.push(chars[i]);
                    i += 2;
                }
                ('{', _) => {
                    let end = (i + 1..chars.len())
                        .find(|&j| chars[j] == '}')
                        .ok_or_else(|| parse_error(i, "`{` is never closed"))?;
                    let body: String = chars[i + 1..end].iter().collect();
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Slot(parse_slot(&body, i)?));
                    i = end + 1;
                }
                ('}', _) => return Err(parse_error(i, "`}` without `{` (write `}}` for a brace)")),
                (c, _) => {
                    literal.push(c);
                    i += 1;
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template {
            parts,
            source: text.to_string(),
        })
    }

    /// A built-in template by name: `ham10000` or `brset` ([`HAM10000`], [`BRSET`]).
    ///
    /// ```
    /// use medvec_ingest::template::Template;
    /// assert!(Template::preset("ham10000").is_some());
    /// assert!(Template::preset("nope").is_none());
    /// ```
    pub fn preset(name: &str) -> Option<Template> {
        let text = match name.to_ascii_lowercase().as_str() {
            "ham10000" => HAM10000,
            "brset" => BRSET,
            "dicom" => DICOM,
            _ => return None,
        };
        Template::parse(text).ok()
    }

    /// A preset name, or else template text.
    ///
    /// ```
    /// use medvec_ingest::template::Template;
    /// assert_eq!(Template::from_name_or_text("ham10000")?, Template::preset("ham10000").unwrap());
    /// assert_eq!(Template::from_name_or_text("Sex: {sex}")?.columns(), vec!["sex"]);
    /// # Ok::<(), medvec_ingest::template::TemplateError>(())
    /// ```
    pub fn from_name_or_text(text: &str) -> Result<Template, TemplateError> {
        match Template::preset(text) {
            Some(t) => Ok(t),
            None => Template::parse(text),
        }
    }

    /// The template text this was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The columns the template reads, in order of first use.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Slot(slot) = part {
                if !out.contains(&slot.column.as_str()) {
                    out.push(&slot.column);
                }
            }
        }
        out
    }

    /// Renders one row; `row(column)` gives a cell's text, `None` when missing.
    pub fn render(&self, row: &dyn Fn(&str) -> Option<String>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Slot(slot) => out.push_str(&slot.render(row)?),
            }
        }
        Ok(out)
    }
}

fn parse_error(index: usize, detail: &str) -> TemplateError {
    TemplateError::Parse {
        position: index + 1,
        detail: detail.to_string(),
    }
}

/// Parses `column[:map][|default]`, `index` being the `{`'s character index.
fn parse_slot(body: &str, index: usize) -> Result<Slot, TemplateError> {
    let (head, default) = match body.split_once('|') {
        Some((head, default)) => (head, Some(default.to_string())),
        None => (body, None),
    };
    let (column, map) = match head.split_once(':') {
        Some((column, map)) => (column.trim(), parse_map(map, index)?),
        None => (head.trim(), Vec::new()),
    };
    if column.is_empty() {
        return Err(parse_error(index, "empty column name in `{}`"));
    }
    if column.contains('{') {
        return Err(parse_error(index, "`{` inside a slot"));
    }
    Ok(Slot {
        column: column.to_string(),
        map,
        default,
        position: index + 1,
    })
}

fn parse_map(text: &str, index: usize) -> Result<Vec<(String, String)>, TemplateError> {
    text.split(',')
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.to_string()))
            }
            _ => Err(parse_error(
                index,
                &format!("value map entry `{entry}` is not KEY=TEXT"),
            )),
        })
        .collect()
}

impl Slot {
    fn render(&self, row: &dyn Fn(&str) -> Option<String>) -> Result<String, TemplateError> {
        let value = row(&self.column)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        let Some(value) = value else {
            return self.default.clone().ok_or_else(|| TemplateError::Missing {
                position: self.position,
                column: self.column.clone(),
            });
        };
        let value = strip_integral_zero(&value);
        let mapped = self.map.iter().find(|(k, _)| *k == value);
        let wildcard = self.map.iter().find(|(k, _)| k == "*");
        Ok(match (mapped, wildcard) {
            (Some((_, text)), _) => text.clone(),
            (None, Some((_, text))) => text.replace('$', &value),
            (None, None) => value,
        })
    }
}

/// `45.0` → `45`; other text unchanged.
fn strip_integral_zero(value: &str) -> String {
    match value.strip_suffix(".0") {
        Some(head) if value.parse::<f64>().is_ok() && !head.is_empty() => head.to_string(),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn row<'a>(cells: &'a HashMap<&str, &str>) -> impl Fn(&str) -> Option<String> + 'a {
        move |c| cells.get(c).map(|v| v.to_string())
    }

    #[test]
    fn substitution_defaults_maps_and_escapes() {
        let t = Template::parse("{{x}} {a} {b|none} {c:0=left,1=right|?} {d:*=[$]}").unwrap();
        let cells = HashMap::from([("a", "1.0"), ("b", " "), ("c", "1"), ("d", "v")]);
        assert_eq!(t.render(&row(&cells)).unwrap(), "{x} 1 none right [v]");
        let cells = HashMap::from([("a", "2.5"), ("c", "7"), ("d", "")]);
        let err = t.render(&row(&cells)).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Missing {
                position: 41,
                column: "d".into()
            }
        );
        assert_eq!(t.columns(), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn unmapped_values_render_as_themselves() {
        let t = Template::parse("{c:0=left,1=right|?}").unwrap();
        let cells = HashMap::from([("c", "3")]);
        assert_eq!(t.render(&row(&cells)).unwrap(), "3");
    }

    #[test]
    fn parse_errors_name_the_position() {
        let cases = [
            ("ab {x", "template, character 4: `{` is never closed"),
            (
                "ab } x",
                "template, character 4: `}` without `{` (write `}}` for a brace)",
            ),
            ("{}", "template, character 1: empty column name in `{}`"),
            (
                "x {c:0left}",
                "template, character 3: value map entry `0left` is not KEY=TEXT",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Template::parse(text).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn numbers_lose_only_a_trailing_point_zero() {
        assert_eq!(strip_integral_zero("45.0"), "45");
        assert_eq!(strip_integral_zero("45.05"), "45.05");
        assert_eq!(strip_integral_zero("v1.0x"), "v1.0x");
        assert_eq!(strip_integral_zero("abc.0"), "abc.0");
    }

    #[test]
    fn brset_preset_renders() {
        let t = Template::preset("brset").unwrap();
        let cells = HashMap::from([
            ("patient_sex", "2"),
            ("patient_age", "57.0"),
            ("exam_eye", "1"),
            ("comorbidities", "diabetes, hypertension"),
            ("diabetes_time_y", "12"),
            ("insuline", "1"),
            ("optic_disc", "1"),
            ("vessels", "1"),
            ("macula", "2"),
            ("macular_edema", "0"),
            ("amd", "1"),
        ]);
        let text = t.render(&row(&cells)).unwrap();
        assert!(text.starts_with("An image from the right eye of a female patient, aged 57 years, with comorbidities: diabetes, hypertension, diabetes diagnosed for 12 years, using insulin. The optic disc is normal, vessels are normal, and the macula is abnormal. Conditions include macular edema: absent, scar: not reported,"), "{text}");
        assert!(text.contains("amd: present,"), "{text}");
        assert!(
            text.ends_with("and other conditions: not reported."),
            "{text}"
        );
        let empty = HashMap::new();
        let text = t.render(&row(&empty)).unwrap();
        assert!(text.contains("with no comorbidities reported, with no diabetes duration reported, not using insulin."), "{text}");
    }

    /// Real rows of HAM10000 (the 600 committed in fixtures/demo/meta.csv, every `dx_type`,
    /// `sex` and `localization` of the dataset among them), the paper's exact sentences.
    #[test]
    fn ham10000_preset_on_real_rows() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/meta.csv");
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let headers = reader.headers().unwrap().clone();
        let t = Template::preset("ham10000").unwrap();
        let mut rendered = HashMap::new();
        for record in reader.records() {
            let record = record.unwrap();
            let cell = |c: &str| {
                let i = headers.iter().position(|h| h == c)?;
                record.get(i).map(str::to_string)
            };
            rendered.insert(cell("id").unwrap(), t.render(&cell).unwrap());
        }
        assert_eq!(
            rendered["ISIC_0024334"],
            "Patient diagnosed via follow_up. Age: 45 years. Sex: female. Localization: trunk."
        );
        assert_eq!(
            rendered["ISIC_0032738"],
            "Patient diagnosed via consensus. Age: No data reported years. Sex: unknown. Localization: unknown."
        );
        assert_eq!(rendered.len(), 600);
    }
}
