//! Command definitions (clap) and dispatch.

mod admin;
mod align;
mod classify;
mod demo;
mod dicom;
mod heads;
mod hits;
mod import;
mod ingest;
mod records;
mod search;
mod serve;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// medvec: an embedded multimodal vector store for clinics with CPUs only.
#[derive(Debug, Parser)]
#[command(name = "medvec", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Show payload values in errors and warnings (hidden by default: they may identify patients).
    #[arg(long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    Create(admin::CreateArgs),
    Import(import::ImportArgs),
    Ingest(ingest::IngestArgs),
    Embed(ingest::EmbedArgs),
    Search(search::SearchArgs),
    Get(records::GetArgs),
    Delete(records::DeleteArgs),
    Stats(admin::StatsArgs),
    Verify(admin::VerifyArgs),
    Compact(admin::CompactArgs),
    Drop(admin::DropArgs),
    Export(import::ExportArgs),
    Gap(align::GapArgs),
    Train(heads::TrainArgs),
    Sweep(heads::SweepArgs),
    Heads(heads::HeadsArgs),
    Classify(classify::ClassifyArgs),
    Eval(heads::EvalArgs),
    ExportHead(heads::ExportHeadArgs),
    Demo(demo::DemoArgs),
    DicomTags(dicom::DicomTagsArgs),
    Serve(serve::ServeArgs),
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Create(args) => admin::create(args),
        Command::Import(args) => import::import(args),
        Command::Ingest(args) => return ingest::ingest(args),
        Command::Embed(args) => return ingest::embed(args),
        Command::Search(args) => search::search(args),
        Command::Get(args) => records::get(args),
        Command::Delete(args) => records::delete(args),
        Command::Stats(args) => admin::stats(args),
        Command::Verify(args) => admin::verify(args),
        Command::Compact(args) => admin::compact(args),
        Command::Drop(args) => admin::drop_collection(args),
        Command::Export(args) => import::export(args),
        Command::Gap(args) => align::gap(args),
        Command::Train(args) => heads::train(args),
        Command::Sweep(args) => heads::sweep(args),
        Command::Heads(args) => heads::heads(args),
        Command::Classify(args) => classify::classify_command(args),
        Command::Eval(args) => heads::eval(args),
        Command::ExportHead(args) => heads::export_head(args),
        Command::Demo(args) => demo::demo(args),
        Command::DicomTags(args) => dicom::dicom_tags(args, cli.verbose),
        Command::Serve(args) => serve::serve(args),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// Parses an optional `--filter`-style option, naming the flag in the error.
fn parse_filter(text: Option<&str>, flag: &str) -> Result<Option<medvec_store::Filter>> {
    use anyhow::Context;
    text.map(medvec_store::Filter::parse)
        .transpose()
        .with_context(|| flag.to_string())
}

/// Prints a JSON value on one line.
fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// Prints `acknowledged N` on stderr once N rows are durable (`--progress-lines`, used by scripts
/// and the crash tests). One write per line, so a reader never sees half a number from a killed
/// process.
fn acknowledge(rows: u64) {
    let line = format!("acknowledged {rows}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}
