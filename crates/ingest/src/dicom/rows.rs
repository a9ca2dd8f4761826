//! DICOM files in an archive: telling them apart from other images, and what one file
//! contributes to its records (which frames, their ids, the header's payload cells).

use super::header::{TagSelection, FRAME_FIELD};
use super::{DicomImage, FrameChoice};

/// How the DICOM files of an archive become records.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomIngest {
    /// Which frames of a multi-frame file are ingested (default: the middle one).
    pub frames: FrameChoice,
    /// The header attributes stored as payload.
    pub tags: TagSelection,
    /// The store's pseudonym key; without it no `*_key` field is filled.
    pub pseudonym_key: Option<[u8; 32]>,
}

impl Default for DicomIngest {
    fn default() -> Self {
        DicomIngest {
            frames: FrameChoice::Middle,
            tags: TagSelection::new(&[], false).expect("the safe tags are known"),
            pseudonym_key: None,
        }
    }
}

impl DicomIngest {
    /// The header's payload cells as text (typed values print as themselves, so a payload field
    /// of any type parses them back), for the payload and the text template.
    pub fn cells(&self, dicom: &DicomImage) -> Vec<(String, String)> {
        self.tags
            .values(dicom.object(), self.pseudonym_key.as_ref())
            .into_iter()
            .map(|(name, value)| (name, value.to_string()))
            .collect()
    }

    /// The record id of `frame` of the file whose row id is `id`: the id itself, or `ID#FRAME`
    /// (0-based, as `pixel_array[frame]`) when every frame is a record.
    pub fn record_id(&self, id: &str, frame: u32) -> String {
        match self.frames {
            FrameChoice::All => format!("{id}#{frame}"),
            _ => id.to_string(),
        }
    }

    /// The extra cell of a frame record: its frame number, when every frame is a record.
    pub fn frame_cell(&self, frame: u32) -> Option<(String, String)> {
        (self.frames == FrameChoice::All).then(|| (FRAME_FIELD.to_string(), frame.to_string()))
    }

    /// The payload fields a collection created for this archive gets.
    pub fn payload_fields(&self) -> Vec<medvec_store::PayloadField> {
        self.tags.payload_fields(self.frames == FrameChoice::All)
    }
}
