//! What `asof mirror` prints besides the snapshot ID: warnings, files recorded as missing,
//! and the plan of a dry run.

use crate::mirror::{DryRun, MirrorReport, PlannedFile};

/// Warnings of a finished run on stderr: Release files left out, files missing upstream.
pub fn print_warnings(r: &MirrorReport) {
    for w in &r.warnings {
        eprintln!("warning: {}: {w}", r.archive);
    }
    if !r.missing.is_empty() {
        let count = if r.missing.len() == 1 { "1 file".to_string() } else { format!("{} files", r.missing.len()) };
        eprintln!(
            "warning: {}: snapshot {} recorded without {count} listed upstream but not found there (404; --allow-missing):",
            r.archive, r.snapshot
        );
        for m in &r.missing {
            eprintln!("  {m}");
        }
    }
}

fn sum(files: &[PlannedFile]) -> u64 {
    files.iter().map(|f| f.size).sum()
}

/// The plan: JSON, or the files to download on stdout (`SIZE PATH`) and a summary on stderr.
pub fn print_dry_run(plan: &DryRun, json: bool) -> anyhow::Result<()> {
    for w in &plan.warnings {
        eprintln!("warning: {}: {w}", plan.archive);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(plan)?);
    } else {
        for f in plan.release_files.iter().chain(&plan.index_files).chain(&plan.pool_files) {
            println!("{} {}", f.size, f.path);
        }
    }
    let line = |what: &str, files: &[PlannedFile]| format!("  {what}: {} ({} bytes)", files.len(), sum(files));
    eprintln!("{}: dry run; nothing was stored and no snapshot was made", plan.archive);
    eprintln!("{}", line("Release files", &plan.release_files));
    eprintln!("{}", line("index files to download", &plan.index_files));
    eprintln!("{}", line("index files already stored", &plan.index_files_stored));
    eprintln!("{}", line("pool files to download", &plan.pool_files));
    eprintln!("{}", line("pool files already stored", &plan.pool_files_stored));
    eprintln!("  total to download: {} files ({} bytes)", plan.download_files, plan.download_bytes);
    if !plan.missing.is_empty() {
        eprintln!("  listed upstream but not found there (404): {}", plan.missing.len());
        for m in &plan.missing {
            eprintln!("    {m}");
        }
    }
    eprintln!("  signature {}", plan.signature);
    Ok(())
}
