//! Command-line arguments, and the small parsers they need (durations, rate lists).
//!
//! One flat set of options for both transports: `hammer grpc …` and `hammer amqp …`
//! share every flag that shapes the load, so a run on one architecture can be repeated
//! on the other by changing one word.

use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

/// Open-loop load generator: sends sales queries on a fixed schedule over gRPC or AMQP
/// and reports latency measured from each request's intended send time. Runs on one
/// executor thread; set SMOL_THREADS=N for more.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// transport: `grpc` (hammer → lb/worker) or `amqp` (hammer → RabbitMQ → mq-worker)
    #[argh(positional)]
    pub transport: TransportKind,

    /// gRPC target host:port (default 127.0.0.1:50051, the LB); several, comma-separated,
    /// share the connections in turn (workers called directly, without the LB)
    #[argh(option, default = "String::from(\"127.0.0.1:50051\")")]
    pub target: String,

    /// gRPC method: `sales` (GetSalesMetrics, default) or `health` (grpc.health.v1 Check,
    /// a no-op that measures hammer's own ceiling)
    #[argh(option, default = "Method::Sales")]
    pub method: Method,

    /// AMQP URL (default: env AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/%2f)
    #[argh(option)]
    pub amqp: Option<String>,

    /// AMQP request queue (default worker_queue)
    #[argh(option, default = "String::from(\"worker_queue\")")]
    pub queue: String,

    /// AMQP message encoding: proto (default) or json
    #[argh(option, default = "Encoding::Proto")]
    pub encoding: Encoding,

    /// target rate in requests per second (default 500)
    #[argh(option, default = "500.0")]
    pub rate: f64,

    /// HTTP/2 connections (gRPC; calls go round-robin over them) or AMQP channels (default 50)
    #[argh(option, default = "50")]
    pub concurrency: usize,

    /// measured duration: 30s, 500ms, 2m, 1h (default 30s)
    #[argh(
        option,
        default = "Duration::from_secs(30)",
        from_str_fn(parse_duration)
    )]
    pub duration: Duration,

    /// warm-up before the measured duration, at the same rate, excluded from results (default 0s)
    #[argh(option, default = "Duration::ZERO", from_str_fn(parse_duration))]
    pub warmup: Duration,

    /// per-request timeout, sent as grpc-timeout / AMQP expiration (default 10s)
    #[argh(
        option,
        default = "Duration::from_secs(10)",
        from_str_fn(parse_duration)
    )]
    pub timeout: Duration,

    /// seed of the query mix (default: random)
    #[argh(option)]
    pub seed: Option<u64>,

    /// SQLite database the query mix draws its date range from (default database.db)
    #[argh(option, default = "PathBuf::from(\"database.db\")")]
    pub db: PathBuf,

    /// query mix: `seed` (the seed client's: Europe, Computers, random dates and hours;
    /// default) or `random` (every filter drawn from the data, some empty)
    #[argh(option, default = "MixKind::Seed")]
    pub mix: MixKind,

    /// most requests in flight; past it a scheduled request is dropped and counted (default 10000)
    #[argh(option, default = "10000")]
    pub max_inflight: usize,

    /// recompute this many sampled replies from --db in-process and count mismatches (default 0)
    #[argh(option, default = "0")]
    pub verify: usize,

    /// write the report as JSON to this file
    #[argh(option)]
    pub json: Option<PathBuf>,

    /// write the latency percentile distribution (HdrHistogram text, ms) to this file;
    /// service time goes to the same name ending in .service.hgrm (sweeps: one pair
    /// per rate, run.r500.hgrm and run.r500.service.hgrm)
    #[argh(option)]
    pub hgrm: Option<PathBuf>,

    /// sweep: run each of these rates in turn (e.g. 250,500,1000) and print one table
    #[argh(option, from_str_fn(parse_rates))]
    pub rates: Option<Vec<f64>>,

    /// sweep: search the highest rate whose p99 holds --slo-p99 (starts at --rate)
    #[argh(switch)]
    pub find_max: bool,

    /// latency objective for --find-max, on p99 from intended send time (default 10ms)
    #[argh(
        option,
        default = "Duration::from_millis(10)",
        from_str_fn(parse_duration)
    )]
    pub slo_p99: Duration,

    /// runs per --find-max step; a step holds when most of its runs hold, so one
    /// unlucky window near the knee does not end the search (default 1)
    #[argh(option, default = "1")]
    pub find_repeat: usize,

    /// climb in --find-max from --rate in steps of this many requests/s instead of
    /// doubling and bisecting, so no step overshoots the knee by more than one step
    #[argh(option)]
    pub find_step: Option<f64>,

    /// no per-second progress lines on stderr
    #[argh(switch, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Grpc,
    Amqp,
}

impl argh::FromArgValue for TransportKind {
    fn from_arg_value(value: &str) -> Result<Self, String> {
        match value {
            "grpc" => Ok(TransportKind::Grpc),
            "amqp" => Ok(TransportKind::Amqp),
            other => Err(format!(
                "unknown transport `{other}`: expected grpc or amqp"
            )),
        }
    }
}

impl TransportKind {
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Grpc => "grpc",
            TransportKind::Amqp => "amqp",
        }
    }
}

/// Which gRPC method each request calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sales,
    Health,
}

impl argh::FromArgValue for Method {
    fn from_arg_value(value: &str) -> Result<Self, String> {
        match value {
            "sales" => Ok(Method::Sales),
            "health" => Ok(Method::Health),
            other => Err(format!(
                "unknown method `{other}`: expected sales or health"
            )),
        }
    }
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Sales => "sales",
            Method::Health => "health",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Proto,
    Json,
}

impl argh::FromArgValue for Encoding {
    fn from_arg_value(value: &str) -> Result<Self, String> {
        match value {
            "proto" => Ok(Encoding::Proto),
            "json" => Ok(Encoding::Json),
            other => Err(format!(
                "unknown encoding `{other}`: expected proto or json"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixKind {
    Seed,
    Random,
}

impl argh::FromArgValue for MixKind {
    fn from_arg_value(value: &str) -> Result<Self, String> {
        match value {
            "seed" => Ok(MixKind::Seed),
            "random" => Ok(MixKind::Random),
            other => Err(format!("unknown mix `{other}`: expected seed or random")),
        }
    }
}

impl MixKind {
    pub fn name(self) -> &'static str {
        match self {
            MixKind::Seed => "seed",
            MixKind::Random => "random",
        }
    }
}

impl Args {
    /// Checks what argh cannot: values in range, flags that make sense together.
    pub fn check(&self) -> Result<(), String> {
        let rates = self.rates.as_deref().unwrap_or(&[]);
        for &rate in std::iter::once(&self.rate).chain(rates) {
            if !(rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0) {
                return Err(format!(
                    "rate {rate}: expected a number of requests/s in (0, 1e7]"
                ));
            }
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(format!(
                "--concurrency {}: expected 1..=10000",
                self.concurrency
            ));
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than 0".into());
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be more than 0".into());
        }
        if self.max_inflight == 0 {
            return Err("--max-inflight must be at least 1".into());
        }
        if self.find_max && self.rates.is_some() {
            return Err("--find-max and --rates are two kinds of sweep: pick one".into());
        }
        if self.find_repeat == 0 {
            return Err("--find-repeat must be at least 1".into());
        }
        if self.find_repeat > 1 && !self.find_max {
            return Err("--find-repeat only applies to --find-max".into());
        }
        if let Some(step) = self.find_step {
            if !self.find_max {
                return Err("--find-step only applies to --find-max".into());
            }
            if !(step.is_finite() && step >= 1.0) {
                return Err(format!(
                    "--find-step must be at least 1 request/s, not {step}"
                ));
            }
        }
        if self.find_max && self.slo_p99.is_zero() {
            return Err("--slo-p99 must be more than 0".into());
        }
        if self.transport == TransportKind::Amqp && self.method == Method::Health {
            return Err("--method health is a gRPC method; AMQP has no health call".into());
        }
        Ok(())
    }

    /// The AMQP URL: the flag, else env AMQP_URL, else the local default broker.
    pub fn amqp_url(&self) -> String {
        self.amqp
            .clone()
            .or_else(|| std::env::var("AMQP_URL").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
    }
}

/// Parses `30s`, `500ms`, `2m`, `1h`, `1.5s`, `250us`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration like 30s, 500ms, 2m"))?;
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use us, ms, s, m or h)"
            ))
        }
    };
    let seconds = value * seconds_per_unit;
    if !seconds.is_finite() || seconds > 1e9 {
        return Err(format!("`{text}`: duration out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a comma-separated list of rates: `250,500,1000`.
pub fn parse_rates(text: &str) -> Result<Vec<f64>, String> {
    let rates: Vec<f64> = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{part}` in --rates: expected a number"))
        })
        .collect::<Result<_, _>>()?;
    if rates.is_empty() {
        return Err("--rates: expected at least one rate".into());
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        for bad in ["", "s", "10x", "-1s", "1.2.3s", "ms10", "1e999s"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn rate_lists() {
        assert_eq!(parse_rates("250,500, 1000"), Ok(vec![250.0, 500.0, 1000.0]));
        assert!(parse_rates("250,,500").is_err());
        assert!(parse_rates("fast").is_err());
    }

    #[test]
    fn defaults_are_the_seed_clients() {
        let args = Args::from_args(&["hammer"], &["grpc"]).expect("parses");
        assert_eq!(args.rate, 500.0);
        assert_eq!(args.concurrency, 50);
        assert_eq!(args.duration, Duration::from_secs(30));
        assert_eq!(args.warmup, Duration::ZERO);
        assert_eq!(args.timeout, Duration::from_secs(10));
        assert_eq!(args.target, "127.0.0.1:50051");
        assert_eq!(args.queue, "worker_queue");
        assert!(args.check().is_ok());
    }

    #[test]
    fn nonsense_is_refused() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["grpc"];
            argv.extend_from_slice(extra);
            Args::from_args(&["hammer"], &argv)
                .map_err(|e| e.output)
                .and_then(|a| a.check())
        };
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--rate", "-5"]).is_err());
        assert!(parse(&["--concurrency", "0"]).is_err());
        assert!(parse(&["--duration", "0s"]).is_err());
        assert!(parse(&["--find-max", "--rates", "1,2"]).is_err());
        assert!(parse(&["--find-max", "--find-repeat", "0"]).is_err());
        assert!(parse(&["--find-repeat", "3"]).is_err());
        assert!(parse(&["--find-max", "--find-repeat", "3"]).is_ok());
        assert!(parse(&["--find-step", "1000"]).is_err());
        assert!(parse(&["--find-max", "--find-step", "0"]).is_err());
        assert!(parse(&["--find-max", "--find-step", "1000"]).is_ok());
        assert!(Args::from_args(&["hammer"], &["http"]).is_err());
    }
}
