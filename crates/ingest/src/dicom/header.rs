//! DICOM header → payload, without copying who the patient is into the store.
//!
//! - [`SAFE_TAGS`]: the non-identifying attributes stored by default, typed (PatientAge as whole
//!   years). PatientSex and PatientAge are what PS3.15's *Retain Patient Characteristics*
//!   option keeps; StudyDescription and SeriesDescription are free text, which the Basic
//!   Profile would clean: they are kept because they say what the image is, so an archive whose
//!   descriptions hold names should be cleaned before ingest.
//! - [`TagSelection`]: the safe tags plus `--dicom-tags` extras. An extra that can identify a
//!   patient (the PS3.15 Basic Confidentiality Profile's attributes: names, ids, dates and
//!   times, addresses, instance UIDs, free-text comments) is refused unless the caller allows it.
//! - Pseudonyms: `patient_key`, `study_key` and `series_key` are HMAC-SHA-256 of PatientID,
//!   StudyInstanceUID and SeriesInstanceUID under the store's secret key
//!   ([`medvec_store::Store::pseudonym_key`]), as lowercase hex. Without the key nobody can
//!   compute a patient's key from their id (no dictionary attack on a short hospital id space);
//!   anyone who has both the key and the ids can. They link a patient's images across the store,
//!   which is their purpose (grouped splits), so a store is still patient data.
//! - [`header_lines`]: the header as `medvec dicom-tags` prints it, identifying values hidden.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::header::{HasLength, Header};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;
use hmac::{Hmac, Mac};
use medvec_store::{FieldType, PayloadField, Value};
use sha2::Sha256;

/// The attributes stored by default, with their payload types. Field names are the DICOM
/// keywords, so a filter reads `Modality = "CT" and PatientAge >= 60`.
pub const SAFE_TAGS: &[(&str, FieldType)] = &[
    ("Modality", FieldType::String),
    ("BodyPartExamined", FieldType::String),
    ("ViewPosition", FieldType::String),
    ("Laterality", FieldType::String),
    ("ImageLaterality", FieldType::String),
    ("PatientSex", FieldType::String),
    ("PatientAge", FieldType::Int),
    ("StudyDescription", FieldType::String),
    ("SeriesDescription", FieldType::String),
    ("Manufacturer", FieldType::String),
    ("Rows", FieldType::Int),
    ("Columns", FieldType::Int),
    ("PixelSpacing", FieldType::String),
    ("PhotometricInterpretation", FieldType::String),
    ("NumberOfFrames", FieldType::Int),
];

/// Pseudonym payload fields and the attribute each is keyed from.
pub const PSEUDONYMS: [(&str, &str); 3] = [
    ("patient_key", "PatientID"),
    ("study_key", "StudyInstanceUID"),
    ("series_key", "SeriesInstanceUID"),
];

/// The payload field holding a record's frame number (with `--frames all`).
pub const FRAME_FIELD: &str = "frame";

/// Attributes of PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile) that the
/// value-representation rules of [`is_identifying`] do not already catch.
const CONFIDENTIAL: &[&str] = &[
    "AccessionNumber",
    "AcquisitionComments",
    "AcquisitionDeviceProcessingDescription",
    "AcquisitionProtocolDescription",
    "AdditionalPatientHistory",
    "AdmissionID",
    "AdmittingDiagnosesDescription",
    "Allergies",
    "BranchOfService",
    "CassetteID",
    "CommentsOnThePerformedProcedureStep",
    "ContributionDescription",
    "CountryOfResidence",
    "CurrentPatientLocation",
    "DerivationDescription",
    "DetectorID",
    "DeviceSerialNumber",
    "DischargeDiagnosisDescription",
    "DistributionAddress",
    "EthnicGroup",
    "FrameComments",
    "GantryID",
    "GeneratorID",
    "HumanPerformerOrganization",
    "IdentifyingComments",
    "ImageComments",
    "ImagePresentationComments",
    "ImagingServiceRequestComments",
    "Impressions",
    "InstitutionAddress",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "InsurancePlanIdentification",
    "InterpretationDiagnosisDescription",
    "InterpretationText",
    "IssuerOfAdmissionID",
    "IssuerOfPatientID",
    "MedicalAlerts",
    "MedicalRecordLocator",
    "MilitaryRank",
    "ModifiedImageDescription",
    "Occupation",
    "OrderCallbackPhoneNumber",
    "OrderEntererLocation",
    "OtherPatientIDs",
    "PatientAddress",
    "PatientComments",
    "PatientID",
    "PatientInstitutionResidence",
    "PatientReligiousPreference",
    "PatientSexNeutered",
    "PatientSize",
    "PatientState",
    "PatientTelephoneNumbers",
    "PatientTransportArrangements",
    "PatientWeight",
    "PerformedLocation",
    "PerformedProcedureStepDescription",
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedStationName",
    "PersonAddress",
    "PersonTelephoneNumbers",
    "PlateID",
    "PreMedication",
    "PregnancyStatus",
    "ProtocolName",
    "ReasonForStudy",
    "ReasonForTheImagingServiceRequest",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "RegionOfResidence",
    "RequestedContrastAgent",
    "RequestedProcedureComments",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "RequestedProcedureLocation",
    "RequestingService",
    "ResponsibleOrganization",
    "ResultsComments",
    "ScheduledPatientInstitutionResidence",
    "ScheduledProcedureStepDescription",
    "ScheduledStationAETitle",
    "ScheduledStationName",
    "ScheduledStudyLocation",
    "ScheduledStudyLocationAETitle",
    "ServiceEpisodeDescription",
    "ServiceEpisodeID",
    "SmokingStatus",
    "SpecialNeeds",
    "StationName",
    "StudyComments",
    "StudyID",
    "StudyIDIssuer",
    "TextComments",
    "TextString",
    "TopicAuthor",
    "TopicKeywords",
    "TopicSubject",
    "TopicTitle",
    "VerifyingOrganization",
    "VisitComments",
];

/// Why a `--dicom-tags` name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("--dicom-tags: `{0}` is not a DICOM attribute keyword (for example BodyPartExamined)")]
    Unknown(String),
    #[error("--dicom-tags: `{0}` can identify a patient (DICOM PS3.15 Basic Confidentiality Profile); add --allow-identifying-tags to store it anyway")]
    Identifying(String),
    #[error("--dicom-tags: `{0}` is a sequence; only attributes with values can be stored")]
    Sequence(String),
}

/// True when an attribute can identify a patient: a person name, a date or time, an instance
/// UID (class UIDs say what kind of object it is, not whose), or one of [`CONFIDENTIAL`].
pub fn is_identifying(keyword: &str, vr: VR) -> bool {
    let instance_uid =
        vr == VR::UI && !keyword.ends_with("ClassUID") && keyword != "TransferSyntaxUID";
    matches!(vr, VR::PN | VR::DA | VR::DT | VR::TM)
        || instance_uid
        || CONFIDENTIAL.contains(&keyword)
}

/// The dictionary's tag and value representation of a keyword.
fn lookup(keyword: &str) -> Option<(Tag, VR)> {
    let entry = StandardDataDictionary.by_name(keyword)?;
    let vr = match entry.vr() {
        dicom_core::dictionary::VirtualVr::Exact(vr) => vr,
        _ => VR::US,
    };
    Some((entry.tag(), vr))
}

/// Which attributes become payload: [`SAFE_TAGS`] and the chosen extras (stored as strings).
#[derive(Debug, Clone, PartialEq)]
pub struct TagSelection {
    tags: Vec<(String, FieldType)>,
}

impl TagSelection {
    /// The safe tags plus `extra` keywords, refusing identifying ones unless `allow_identifying`.
    ///
    /// ```
    /// use medvec_ingest::dicom::TagSelection;
    /// assert!(TagSelection::new(&["KVP".into()], false).is_ok());
    /// let refused = TagSelection::new(&["PatientName".into()], false).unwrap_err();
    /// assert!(refused.to_string().contains("--allow-identifying-tags"));
    /// assert!(TagSelection::new(&["PatientName".into()], true).is_ok());
    /// assert!(TagSelection::new(&["NoSuchTag".into()], true).is_err());
    /// ```
    pub fn new(extra: &[String], allow_identifying: bool) -> Result<TagSelection, TagError> {
        let mut tags: Vec<(String, FieldType)> =
            SAFE_TAGS.iter().map(|(k, t)| (k.to_string(), *t)).collect();
        for keyword in extra.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
            let (_, vr) = lookup(keyword).ok_or_else(|| TagError::Unknown(keyword.into()))?;
            if vr == VR::SQ {
                return Err(TagError::Sequence(keyword.into()));
            }
            if !allow_identifying && is_identifying(keyword, vr) {
                return Err(TagError::Identifying(keyword.into()));
            }
            if !tags.iter().any(|(k, _)| k == keyword) {
                tags.push((keyword.to_string(), FieldType::String));
            }
        }
        Ok(TagSelection { tags })
    }

    /// The payload fields a DICOM collection gets: the tags, the pseudonyms and, when every
    /// frame is a record, [`FRAME_FIELD`].
    pub fn payload_fields(&self, with_frame: bool) -> Vec<PayloadField> {
        let mut fields: Vec<PayloadField> = self
            .tags
            .iter()
            .map(|(name, field_type)| PayloadField {
                name: name.clone(),
                field_type: *field_type,
            })
            .collect();
        fields.extend(PSEUDONYMS.iter().map(|(name, _)| PayloadField {
            name: name.to_string(),
            field_type: FieldType::String,
        }));
        if with_frame {
            fields.push(PayloadField {
                name: FRAME_FIELD.into(),
                field_type: FieldType::Int,
            });
        }
        fields
    }

    /// The selected attributes' values (absent or empty ones left out) and, with a key, the
    /// pseudonyms.
    pub fn values(
        &self,
        object: &InMemDicomObject,
        key: Option<&[u8; 32]>,
    ) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = self
            .tags
            .iter()
            .filter_map(|(keyword, field_type)| {
                let text = text_of(object, keyword)?;
                let value = typed(keyword, &text, *field_type)?;
                Some((keyword.clone(), value))
            })
            .collect();
        if let Some(key) = key {
            for (field, keyword) in PSEUDONYMS {
                if let Some(text) = text_of(object, keyword) {
                    out.push((field.to_string(), Value::String(pseudonym(key, &text))));
                }
            }
        }
        out
    }
}

/// An attribute's value as trimmed text (multiple values joined by `\`), if present and not empty.
fn text_of(object: &InMemDicomObject, keyword: &str) -> Option<String> {
    let element = object.element_by_name_opt(keyword).ok()??;
    let text = element.to_str().ok()?;
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!text.is_empty()).then(|| text.to_string())
}

fn typed(keyword: &str, text: &str, field_type: FieldType) -> Option<Value> {
    match field_type {
        FieldType::Int if keyword == "PatientAge" => age_in_years(text).map(Value::Int),
        FieldType::Int => text.parse::<i64>().ok().map(Value::Int),
        _ => Some(Value::String(text.to_string())),
    }
}

/// A DICOM age string (`045Y`, `018M`, `012W`, `005D`; a bare number read as years) in whole
/// years, or `None` when it is not an age.
///
/// ```
/// use medvec_ingest::dicom::age_in_years;
/// assert_eq!(age_in_years("045Y"), Some(45));
/// assert_eq!(age_in_years("018M"), Some(1));
/// assert_eq!(age_in_years("012W"), Some(0));
/// assert_eq!(age_in_years("45"), Some(45));
/// assert_eq!(age_in_years("old"), None);
/// ```
pub fn age_in_years(text: &str) -> Option<i64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'Y'),
    };
    let n: i64 = digits.trim().parse().ok().filter(|n| *n >= 0)?;
    Some(match unit {
        'Y' => n,
        'M' => n / 12,
        'W' => n / 52,
        'D' => n / 365,
        _ => return None,
    })
}

/// `HMAC-SHA-256(key, value)` as lowercase hex.
///
/// ```
/// use medvec_ingest::dicom::pseudonym;
/// let key = [7u8; 32];
/// assert_eq!(pseudonym(&key, "PID-1"), pseudonym(&key, "PID-1"));
/// assert_ne!(pseudonym(&key, "PID-1"), pseudonym(&[8u8; 32], "PID-1"));
/// assert_eq!(pseudonym(&key, "PID-1").len(), 64);
/// ```
pub fn pseudonym(key: &[u8; 32], value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One printed header line: `(GGGG,EEEE) VR Keyword  value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLine {
    pub tag: String,
    pub vr: String,
    pub keyword: String,
    pub value: String,
}

/// The longest value printed; longer ones are cut with `…`.
const SHOWN_CHARS: usize = 64;

/// The header's top-level attributes as a person reads them. Identifying values (see
/// [`is_identifying`]) print as `<hidden>` unless `verbose`; sequences as their item count;
/// binary values (pixel data) as their size.
pub fn header_lines(object: &InMemDicomObject, verbose: bool) -> Vec<HeaderLine> {
    object
        .iter()
        .map(|element| {
            let tag = element.tag();
            let vr = element.vr();
            let keyword = StandardDataDictionary.by_tag(tag).map_or_else(
                || "(private or unknown)".to_string(),
                |e| e.alias().to_string(),
            );
            let value = if !verbose && is_identifying(&keyword, vr) {
                "<hidden>".to_string()
            } else {
                shown_value(element)
            };
            HeaderLine {
                tag: format!("({:04X},{:04X})", tag.group(), tag.element()),
                vr: vr.to_string().to_string(),
                keyword,
                value,
            }
        })
        .collect()
}

fn shown_value(element: &InMemElement) -> String {
    if let Some(items) = element.items() {
        return format!("<sequence of {} items>", items.len());
    }
    if matches!(
        element.vr(),
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::UN
    ) || element.tag() == Tag(0x7FE0, 0x0010)
    {
        let length = element.length();
        return if length.is_defined() {
            format!("<{} bytes>", length.0)
        } else {
            "<encapsulated>".to_string()
        };
    }
    let text = element.to_str().map(|t| t.to_string()).unwrap_or_default();
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if text.chars().count() > SHOWN_CHARS {
        format!("{}…", text.chars().take(SHOWN_CHARS).collect::<String>())
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifying_attributes_are_recognised() {
        for keyword in [
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "AccessionNumber",
            "InstitutionName",
            "ReferringPhysicianName",
            "StudyDate",
            "AcquisitionTime",
            "StudyInstanceUID",
            "SOPInstanceUID",
            "OtherPatientIDs",
        ] {
            let (_, vr) = lookup(keyword).unwrap();
            assert!(is_identifying(keyword, vr), "{keyword}");
        }
        for keyword in [
            "KVP",
            "SliceThickness",
            "SOPClassUID",
            "Modality",
            "PatientPosition",
        ] {
            let (_, vr) = lookup(keyword).unwrap();
            assert!(!is_identifying(keyword, vr), "{keyword}");
        }
    }

    #[test]
    fn payload_fields_are_valid_schema_names() {
        let selection = TagSelection::new(&["KVP".into()], false).unwrap();
        let fields = selection.payload_fields(true);
        for field in &fields {
            PayloadField::parse(&format!("{}:string", field.name)).unwrap();
        }
        assert_eq!(fields.last().unwrap().name, FRAME_FIELD);
        assert!(fields.iter().any(|f| f.name == "KVP"));
    }
}
