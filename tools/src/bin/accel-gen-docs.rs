//! Writes accel's man pages (one per command, section 8) and its bash, zsh
//! and fish completions, from the same clap definition `accel` parses, so
//! they cannot drift from the program:
//!
//!   accel-gen-docs OUT_DIR    # OUT_DIR/man/*.8, OUT_DIR/completions/*

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use clap_complete::Shell;

#[derive(Parser)]
#[command(about = "Write accel's man pages and shell completions")]
struct Args {
    /// Directory to write man/ and completions/ into.
    out: PathBuf,
}

/// `cmd` and each of its subcommands as `name.8`, `name-sub.8`.
fn man_pages(cmd: &clap::Command, dir: &Path) -> Result<usize> {
    let name = cmd.get_name().to_string();
    let mut n = 0;
    let mut write = |c: clap::Command, file: String| -> Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c)
            .section("8")
            .manual("System Administration")
            .source(format!("accel {}", accel::VERSION))
            .render(&mut buf)?;
        fs::write(dir.join(&file), buf).with_context(|| file.clone())?;
        n += 1;
        Ok(())
    };
    write(cmd.clone(), format!("{name}.8"))?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let full = format!("{name}-{}", sub.get_name());
        write(sub.clone().name(full.clone()), format!("{full}.8"))?;
    }
    Ok(n)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut cmd = accel::cli::Cli::command();
    cmd.build();
    let man = args.out.join("man");
    let comp = args.out.join("completions");
    fs::create_dir_all(&man).with_context(|| man.display().to_string())?;
    fs::create_dir_all(&comp).with_context(|| comp.display().to_string())?;
    let pages = man_pages(&cmd, &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "accel", &comp)
            .with_context(|| format!("{shell} completions"))?;
    }
    println!(
        "{pages} man pages in {}, completions in {}",
        man.display(),
        comp.display()
    );
    Ok(())
}
