//! create, stats, verify, compact, drop.

use super::print_json;
use anyhow::{Context, Result};
use clap::Args;
use medvec_store::{
    CollectionStats, GraphBuilder, PayloadField, RepairReport, Schema, Store, VectorField,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Create a collection (and the store, if the directory holds none).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  medvec create ./clinic ham10000 --vector image:512:cosine --vector text:512:cosine \\\n      --field dx:string --field age:int --field sex:string"
)]
pub struct CreateArgs {
    /// Store directory.
    store: PathBuf,
    /// Collection name.
    collection: String,
    /// Vector field NAME:DIM:METRIC[:sq8] (metric: cosine, l2, dot; sq8 adds one-byte codes for
    /// faster graph walks, scores stay exact); repeat for more modalities.
    #[arg(long = "vector", required = true)]
    vectors: Vec<String>,
    /// Payload field NAME:TYPE (type: string, int, float, bool).
    #[arg(long = "field")]
    fields: Vec<String>,
    /// HNSW M for every vector field.
    #[arg(long)]
    m: Option<usize>,
    /// HNSW ef_construction for every vector field.
    #[arg(long)]
    ef_construction: Option<usize>,
    /// Default HNSW ef at search time for every vector field, on graphs of up to 100k rows
    /// (larger graphs scale it by (rows / 100k)^0.6).
    #[arg(long)]
    ef_search: Option<usize>,
    /// HNSW graph builder for every vector field: medvec (default) or hnsw_rs.
    #[arg(long, value_parser = parse_graph_builder)]
    graph_builder: Option<GraphBuilder>,
    #[arg(long)]
    json: bool,
}

pub fn create(args: CreateArgs) -> Result<()> {
    let mut vectors = args
        .vectors
        .iter()
        .map(|s| VectorField::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    for field in &mut vectors {
        field.hnsw.m = args.m.unwrap_or(field.hnsw.m);
        field.hnsw.ef_construction = args.ef_construction.unwrap_or(field.hnsw.ef_construction);
        field.hnsw.ef_search = args.ef_search.unwrap_or(field.hnsw.ef_search);
        field.hnsw.builder = args.graph_builder.unwrap_or(field.hnsw.builder);
    }
    let payload = args
        .fields
        .iter()
        .map(|s| PayloadField::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let store = Store::open_or_create(&args.store)?;
    store.create_collection(&args.collection, Schema { vectors, payload })?;
    if args.json {
        print_json(&json!({"created": args.collection, "store": args.store}));
    } else {
        println!(
            "created collection `{}` in {}",
            args.collection,
            args.store.display()
        );
    }
    Ok(())
}

/// Show collections with their counts, segments and sizes.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  medvec stats ./clinic --json")]
pub struct StatsArgs {
    store: PathBuf,
    /// Only this collection.
    collection: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn stats(args: StatsArgs) -> Result<()> {
    let store = Store::open_read_only(&args.store)?;
    let stats: Vec<CollectionStats> = match &args.collection {
        Some(name) => vec![store.collection(name)?.stats()],
        None => store.stats()?,
    };
    if args.json {
        let collections: Vec<_> = stats.iter().map(medvec_query::jobs::stats_json).collect();
        print_json(&json!({ "collections": collections }));
    } else {
        for s in &stats {
            let awaiting = match s.segments_awaiting_graphs {
                0 => String::new(),
                n => format!(
                    " ({n} awaiting graphs, searched exactly: a bulk load is running or was cut short; a writer's next flush builds them)"
                ),
            };
            let fields: Vec<String> = s
                .schema
                .vectors
                .iter()
                .zip(&s.default_ef)
                .map(|(field, ef)| format!("{} (ef {ef} by default)", field.spec()))
                .collect();
            println!(
                "{}: {} records, {} segments{awaiting}, {} unflushed, {} deleted awaiting compaction, {} bytes; vectors {}",
                s.name, s.count, s.segments, s.unflushed, s.deleted_rows, s.disk_bytes, fields.join(", ")
            );
        }
    }
    Ok(())
}

/// Check every checksum of every file; exits non-zero on any fault.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  medvec verify ./clinic\n  medvec verify ./clinic ham10000 --repair\n\n--repair rebuilds damaged HNSW graph files from their intact vector columns (each is replaced\natomically). Damage to any other file (columns, ids, payload, manifest, log header, heads) is\nreported by name and nothing is changed: restore those from a backup."
)]
pub struct VerifyArgs {
    store: PathBuf,
    /// Only this collection (default: all).
    collection: Option<String>,
    /// Rebuild damaged HNSW graphs from their columns before verifying (takes the write lock).
    #[arg(long)]
    repair: bool,
    #[arg(long)]
    json: bool,
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let repaired = if args.repair {
        repair(&args)?
    } else {
        BTreeMap::new()
    };
    let store = Store::open_read_only(&args.store)?;
    let reports = match &args.collection {
        Some(name) => vec![(name.clone(), store.collection(name)?.verify()?)],
        None => store.verify()?,
    };
    if args.json {
        let rows: Vec<_> = reports
            .iter()
            .map(|(name, r)| {
                let rebuilt: Vec<_> = repaired
                    .get(name)
                    .map(|report| &report.rebuilt[..])
                    .unwrap_or_default()
                    .iter()
                    .map(|(file, reason)| json!({"file": file, "reason": reason}))
                    .collect();
                json!({"collection": name, "files_checked": r.files_checked, "wal_batches": r.wal_batches, "wal_tail_discarded": r.wal_tail_discarded, "rebuilt": rebuilt})
            })
            .collect();
        print_json(&json!({"ok": true, "collections": rows}));
    } else {
        for (name, r) in &reports {
            let torn = match r.wal_tail_discarded {
                0 => String::new(),
                n => format!("; {n} bytes of torn or damaged log tail, which the next writer cuts"),
            };
            println!(
                "{name}: ok ({} files, {} logged batches{torn})",
                r.files_checked, r.wal_batches
            );
        }
    }
    Ok(())
}

/// Rebuilds the damaged graphs of the chosen collections; stops at the first collection with
/// damage that cannot be repaired (which is then left unchanged).
fn repair(args: &VerifyArgs) -> Result<BTreeMap<String, RepairReport>> {
    let store = Store::open(&args.store)?;
    let names = match &args.collection {
        Some(name) => vec![name.clone()],
        None => store.list_collections()?,
    };
    let mut reports = BTreeMap::new();
    for name in names {
        let report = store
            .repair(&name)
            .with_context(|| format!("repairing `{name}`"))?;
        if !args.json {
            for (file, reason) in &report.rebuilt {
                println!("{name}: rebuilt {} ({reason})", file.display());
            }
            if report.rebuilt.is_empty() {
                println!("{name}: no damaged HNSW graph");
            }
        }
        reports.insert(name, report);
    }
    Ok(reports)
}

/// Rewrite segments without deleted rows, reclaiming disk space.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  medvec compact ./clinic ham10000")]
pub struct CompactArgs {
    store: PathBuf,
    /// Only this collection (default: all).
    collection: Option<String>,
    #[arg(long)]
    json: bool,
}

pub fn compact(args: CompactArgs) -> Result<()> {
    let store = Store::open(&args.store)?;
    let names = match &args.collection {
        Some(name) => vec![name.clone()],
        None => store.list_collections()?,
    };
    let mut rows = Vec::new();
    for name in names {
        let collection = store.collection(&name)?;
        let before = collection.stats().disk_bytes;
        collection
            .compact()
            .with_context(|| format!("compacting `{name}`"))?;
        let after = collection.stats().disk_bytes;
        rows.push(json!({"collection": name, "bytes_before": before, "bytes_after": after}));
        if !args.json {
            println!("{name}: {before} → {after} bytes");
        }
    }
    if args.json {
        print_json(&json!({ "compacted": rows }));
    }
    Ok(())
}

/// Delete a whole collection and its files.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  medvec drop ./clinic old_collection")]
pub struct DropArgs {
    store: PathBuf,
    collection: String,
    #[arg(long)]
    json: bool,
}

pub fn drop_collection(args: DropArgs) -> Result<()> {
    Store::open(&args.store)?.drop_collection(&args.collection)?;
    if args.json {
        print_json(&json!({"dropped": args.collection}));
    } else {
        println!("dropped `{}`", args.collection);
    }
    Ok(())
}

fn parse_graph_builder(name: &str) -> Result<GraphBuilder, String> {
    GraphBuilder::parse(name)
        .ok_or_else(|| format!("`{name}` is not a graph builder (medvec or hnsw_rs)"))
}
