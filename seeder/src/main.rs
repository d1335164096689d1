//! `seeder`: writes the study's SQLite database (see the `seeder` library).

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

/// Writes the sales database: the dimension tables, `--sales` random sales,
/// indexes, statistics and a `meta` table. Same flags, same bytes.
#[derive(argh::FromArgs)]
struct Args {
    /// path of the database to write, replaced atomically (default database.db)
    #[argh(option, default = "PathBuf::from(\"database.db\")")]
    db: PathBuf,
    /// number of sales rows (default 10000)
    #[argh(option, default = "10_000")]
    sales: u64,
    /// seed of the random generator (default 1)
    #[argh(option, default = "1")]
    seed: u64,
}

/// Runs with at least this many sales log progress even without a terminal.
const LARGE_RUN: u64 = 1_000_000;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Args = argh::from_env();
    let config = seeder::Config {
        sales: args.sales,
        seed: args.seed,
    };

    // Ctrl-C or SIGTERM stop the run between batches; the library then
    // removes its temporary file, so no partial database is left behind.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            log::warn!("cannot handle signal {signal}: {e}");
        }
    }

    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(config.sales).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} sales {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let mut next_log = LARGE_RUN;
    let progress = |done: u64| {
        bar.set_position(done);
        if bar.is_hidden() && config.sales >= LARGE_RUN && done >= next_log {
            log::info!("{done} of {} sales", config.sales);
            next_log = done + config.sales / 10;
        }
        if stop.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };

    let result = seeder::write_database_with_progress(&args.db, &config, progress);
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            let seconds = summary.elapsed.as_secs_f64();
            log::info!(
                "wrote {}: {} sales ({} rows) in {:.2} s, {:.0} rows/s, {}",
                args.db.display(),
                summary.sales,
                summary.rows,
                seconds,
                summary.rows as f64 / seconds.max(1e-9),
                size(summary.bytes),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes as f64 >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
