//! gap, and the alignment options shared with search.

use super::print_json;
use anyhow::{bail, Context, Result};
use clap::Args;
use medvec_query::gap::{gap_report, GapReport};
use medvec_query::Alignment;
use medvec_store::{Collection, Filter, Store};
use serde_json::json;
use std::path::PathBuf;

/// How Δ is fitted: on the whole collection (running sums, no scan) or on a filtered subset.
#[derive(Debug, Args, Clone, Default)]
pub struct FitArgs {
    /// Fit Δ only on records matching this filter, e.g. 'split = "train"'.
    #[arg(long)]
    pub fit_filter: Option<String>,
}

impl FitArgs {
    pub fn fit(&self, collection: &Collection, a_field: &str, b_field: &str) -> Result<Alignment> {
        Ok(match &self.fit_filter {
            Some(text) => {
                let filter = Filter::parse(text).context("--fit-filter")?;
                Alignment::fit_where(collection, a_field, b_field, &filter)?
            }
            None => Alignment::fit(collection, a_field, b_field)?,
        })
    }
}

/// The pair of fields: given explicitly as A,B, or the collection's two vector fields.
pub fn field_pair(collection: &Collection, fields: Option<&str>) -> Result<(String, String)> {
    if let Some(text) = fields {
        let (a, b) = text
            .split_once(',')
            .context("--fields: expected IMAGE_FIELD,TEXT_FIELD")?;
        return Ok((a.trim().to_string(), b.trim().to_string()));
    }
    let schema = collection.schema();
    match schema.vectors.as_slice() {
        [a, b] => Ok((a.name.clone(), b.name.clone())),
        _ => bail!(
            "the collection has {} vector fields; name the pair with --fields IMAGE,TEXT",
            schema.vectors.len()
        ),
    }
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
    let fit = FitArgs {
        fit_filter: args.filter.clone(),
    };
    let mut reports = vec![gap_report(&collection, &a, &b, filter.as_ref(), None)?];
    if let Some(lambda) = args.shift {
        let alignment = fit.fit(&collection, &a, &b)?;
        reports.push(gap_report(
            &collection,
            &a,
            &b,
            filter.as_ref(),
            Some((&alignment, lambda)),
        )?);
    }
    for report in &reports {
        if args.json {
            print_json(&report_json(report));
        } else {
            print_report(report);
        }
    }
    Ok(())
}

fn report_json(r: &GapReport) -> serde_json::Value {
    json!({
        "fields": [r.a_field, r.b_field], "lambda": r.lambda,
        "count": [r.count_a, r.count_b], "pairs": r.pairs,
        "delta_norm": r.delta_norm, "mean_paired_cosine": r.mean_paired_cosine,
        "resultant_length": [r.resultant_length_a, r.resultant_length_b],
        "pca2_variance": [r.pca_variance_a, r.pca_variance_b],
    })
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
