//! get and delete.

use super::print_json;
use anyhow::{bail, Result};
use clap::Args;
use medvec_query::jobs::record_json;
use medvec_store::Store;
use serde_json::json;
use std::path::PathBuf;

/// Print records by id (payload and vectors) as JSON lines.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  medvec get ./clinic ham10000 ISIC_0027419 --json")]
pub struct GetArgs {
    store: PathBuf,
    collection: String,
    #[arg(required = true)]
    ids: Vec<String>,
    /// Leave the vectors out.
    #[arg(long)]
    no_vectors: bool,
    /// Accepted for uniformity; output is always JSON lines.
    #[arg(long)]
    json: bool,
}

pub fn get(args: GetArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let collection = store.collection(&args.collection)?;
    let mut missing = Vec::new();
    for id in &args.ids {
        match collection.get(id)? {
            Some(record) => print_json(&record_json(&record, !args.no_vectors)),
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "no record with id {} in `{}`",
            missing.join(", "),
            args.collection
        );
    }
    Ok(())
}

/// Delete records by id.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  medvec delete ./clinic ham10000 ISIC_0027419 ISIC_0025030")]
pub struct DeleteArgs {
    store: PathBuf,
    collection: String,
    #[arg(required = true)]
    ids: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub fn delete(args: DeleteArgs) -> Result<()> {
    let store = Store::open(&args.store)?;
    let deleted = store.collection(&args.collection)?.delete(&args.ids)?;
    if args.json {
        print_json(&json!({"deleted": deleted, "requested": args.ids.len()}));
    } else {
        println!("deleted {deleted} of {} records", args.ids.len());
    }
    Ok(())
}
