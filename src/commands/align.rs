//! gap, and the alignment options shared with search.

use super::print_json;
use anyhow::{Context, Result};
use clap::Args;
use medvec_query::gap::GapReport;
use medvec_store::{Collection, Store};
use std::path::PathBuf;

/// How Δ is fitted: on the whole collection (running sums, no scan) or on a filtered subset.
#[derive(Debug, Args, Clone, Default)]
pub struct FitArgs {
    /// Fit Δ only on records matching this filter, e.g. 'split = "train"'.
    #[arg(long)]
    pub fit_filter: Option<String>,
}

/// The pair of fields: given as `--fields A,B`, or the collection's two vector fields.
pub fn field_pair(collection: &Collection, fields: Option<&str>) -> Result<(String, String)> {
    let pair = fields
        .map(|text| {
            text.split_once(',')
                .context("--fields: expected IMAGE_FIELD,TEXT_FIELD")
        })
        .transpose()?;
    Ok(medvec_query::jobs::field_pair(collection, pair)?)
}

/// Report the modality gap between two vector fields (the paper's diagnostics).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec gap ./clinic ham10000 --fields image,text --json\n  medvec gap ./clinic ham10000 --filter 'split = \"train\"' --shift 1.0"
)]
pub struct GapArgs {
    store: PathBuf,
    collection: String,
    /// IMAGE_FIELD,TEXT_FIELD (Δ = mean(image) − mean(text)); default: the two vector fields.
    #[arg(long)]
    fields: Option<String>,
    /// Measure only records matching this filter (Δ is fitted on them too).
    #[arg(long)]
    filter: Option<String>,
    /// Also report the gap after the alignment shift with this λ.
    #[arg(long, allow_hyphen_values = true)]
    shift: Option<f32>,
    #[arg(long)]
    json: bool,
}

pub fn gap(args: GapArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let (a, b) = field_pair(&collection, args.fields.as_deref())?;
    let filter = super::parse_filter(args.filter.as_deref(), "--filter")?;
    let reports = medvec_query::jobs::gap(&collection, (&a, &b), filter.as_ref(), args.shift)?;
    for report in &reports {
        if args.json {
            print_json(&medvec_query::jobs::gap_json(report));
        } else {
            print_report(report);
        }
    }
    Ok(())
}

fn print_report(r: &GapReport) {
    println!(
        "gap {} ↔ {} (λ = {}), {} pairs",
        r.a_field, r.b_field, r.lambda, r.pairs
    );
    println!("  ‖Δ‖                      {:.4}", r.delta_norm);
    println!("  mean paired cosine       {:.4}", r.mean_paired_cosine);
    println!(
        "  mean resultant length    {}: {:.4}   {}: {:.4}",
        r.a_field, r.resultant_length_a, r.b_field, r.resultant_length_b
    );
    println!(
        "  variance after PCA-2     {}: {:.6}   {}: {:.6}",
        r.a_field, r.pca_variance_a, r.b_field, r.pca_variance_b
    );
}
