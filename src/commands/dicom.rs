//! dicom-tags: a DICOM file's header as a person wants to read it, identifying values hidden.

use super::print_json;
use anyhow::Result;
use clap::Args;
use medvec_ingest::dicom::{header_lines, DicomImage};
use medvec_ingest::encode::ImageLimits;
use serde_json::json;
use std::path::PathBuf;

/// Print a DICOM file's header: tag, VR, keyword and value of each top-level attribute.
///
/// Values that can identify a patient (names, ids, dates, times, instance UIDs, addresses,
/// comments: DICOM PS3.15's Basic Confidentiality Profile) print as <hidden> unless the global
/// --verbose flag is given.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec dicom-tags scan.dcm\n  medvec --verbose dicom-tags scan.dcm --json"
)]
pub struct DicomTagsArgs {
    file: PathBuf,
    /// One JSON object per attribute: {"tag", "vr", "keyword", "value"}.
    #[arg(long)]
    json: bool,
}

pub fn dicom_tags(args: DicomTagsArgs, verbose: bool) -> Result<()> {
    let file = DicomImage::open(&args.file, &ImageLimits::default())?;
    let lines = header_lines(file.object(), verbose);
    if args.json {
        for line in &lines {
            print_json(&json!({
                "tag": line.tag, "vr": line.vr, "keyword": line.keyword, "value": line.value,
            }));
        }
        return Ok(());
    }
    let width = lines.iter().map(|l| l.keyword.len()).max().unwrap_or(0);
    for line in &lines {
        println!(
            "{} {} {:<width$}  {}",
            line.tag, line.vr, line.keyword, line.value
        );
    }
    Ok(())
}
