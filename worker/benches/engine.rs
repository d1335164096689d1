//! Query engine throughput: queries per second with 1 and 2 threads, for
//! the seed's query mix (region "Europe", category "Computers", a random
//! date window of up to 365 days inside 2020..2024, a random hour window).
//!
//! `cargo bench -p worker --bench engine -- --db a.db --db b.db` (see
//! scripts/bench-engine.sh, which seeds the databases first). Prints
//! figures; asserts nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use worker::{Pool, QueryConn, SalesRequest};

/// Query engine throughput for the seed's query mix.
#[derive(argh::FromArgs)]
struct Args {
    /// database to query (repeatable)
    #[argh(option)]
    db: Vec<PathBuf>,
    /// seconds per measurement
    #[argh(option, default = "3.0")]
    seconds: f64,
    /// thread counts to measure (repeatable; default 1 and 2)
    #[argh(option)]
    threads: Vec<usize>,
    /// ignored (cargo bench passes it)
    #[argh(switch)]
    #[allow(dead_code)]
    bench: bool,
}

/// Days from 1970-01-01 to 2020-01-01 and 2024-12-31.
const FIRST_DAY: i64 = 18_262;
const LAST_DAY: i64 = 20_088;

fn date(days: i64) -> String {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The seed client's request shape with random dates and hours.
fn seed_mix(rng: &mut fastrand::Rng, n: usize) -> Vec<SalesRequest> {
    (0..n)
        .map(|_| {
            let start = rng.i64(FIRST_DAY..=LAST_DAY);
            let end = (start + rng.i64(0..365)).min(LAST_DAY);
            let start_hour = rng.i32(0..=23);
            SalesRequest {
                region: "Europe".into(),
                category: "Computers".into(),
                start_date: date(start),
                end_date: date(end),
                start_hour: Some(start_hour),
                end_hour: Some(rng.i32(start_hour..=24)),
                ..Default::default()
            }
        })
        .collect()
}

/// Each thread owns a connection and runs the mix in a loop: the engine
/// alone, no channels.
/// CPU time of the calling thread: on a shared machine, queries per CPU
/// second is the figure that does not depend on what else runs.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Returns (queries per wall second, queries per CPU second of one thread).
fn direct(db: &Path, threads: usize, seconds: f64) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let cpu_nanos = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mut conn = QueryConn::open(db).expect("open");
            let requests = seed_mix(&mut fastrand::Rng::with_seed(t as u64), 4096);
            let (stop, done, cpu_nanos) =
                (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&cpu_nanos));
            std::thread::spawn(move || {
                let cpu = thread_cpu();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let req = &requests[n as usize % requests.len()];
                    std::hint::black_box(conn.run(req).expect("query"));
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
                cpu_nanos.fetch_add((thread_cpu() - cpu).as_nanos() as u64, Ordering::Relaxed);
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().expect("bench thread");
    }
    let done = done.load(Ordering::Relaxed) as f64;
    let cpu = cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    (done / started.elapsed().as_secs_f64(), done / cpu)
}

/// The async path: a [`Pool`] of `threads`, 8 callers per thread awaiting
/// `pool.query` on one executor thread.
fn pooled(db: &Path, threads: usize, seconds: f64) -> f64 {
    let pool = Pool::open(db, threads).expect("pool");
    let requests = Arc::new(seed_mix(&mut fastrand::Rng::with_seed(99), 4096));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let total: u64 = smol::block_on(async {
        let callers: Vec<_> = (0..threads * 8)
            .map(|c| {
                let (pool, requests) = (pool.clone(), Arc::clone(&requests));
                smol::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let req = requests[(c * 997 + n as usize) % requests.len()].clone();
                        std::hint::black_box(pool.query(req).await.expect("query"));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for caller in callers {
            total += caller.await;
        }
        total
    });
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Args = argh::from_env();
    let threads = if args.threads.is_empty() {
        vec![1, 2]
    } else {
        args.threads
    };
    if args.db.is_empty() {
        eprintln!("no --db given; run scripts/bench-engine.sh");
        std::process::exit(2);
    }
    for db in &args.db {
        let info = worker::open_info(db).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        let mut conn = QueryConn::open(db).expect("open");
        let sample = seed_mix(&mut fastrand::Rng::with_seed(1), 200);
        let matched: i64 = sample.iter().map(|r| conn.run(r).unwrap().count).sum();
        println!(
            "{}: {} sales; seed mix matches {:.0} sales per query on average",
            db.display(),
            info.sales,
            matched as f64 / sample.len() as f64
        );
        let plan = conn
            .explain(&worker::validate(&sample[0]).unwrap())
            .unwrap();
        println!("  plan: {}", plan.join(" | "));
        let mut single = None;
        for &t in &threads {
            let (qps, per_cpu) = direct(db, t, args.seconds);
            let base = *single.get_or_insert(qps);
            println!(
                "  direct {t} thread(s): {qps:>8.0} q/s ({:.0} q/s per thread, {:.2}x one thread; {per_cpu:.0} q per CPU second)",
                qps / t as f64,
                qps / base
            );
        }
        for &t in &threads {
            let qps = pooled(db, t, args.seconds);
            println!(
                "  pool   {t} thread(s): {qps:>10.0} q/s ({:.0} q/s per thread)",
                qps / t as f64
            );
        }
    }
}
