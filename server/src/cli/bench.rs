//! `cobra bench`: a load generator that measures a cobra server (ours or the Python `cobras`, same
//! protocol): N publishers, M subscribers (optionally filtered), K idle connections, over a lean client
//! (tokio + the `cobra_wire` codec) so the tool itself stays cheap.
//!
//! Each message carries `t` (send time, ns since the tool's own epoch: publishers and subscribers share
//! the process, so no clock sync is needed), `p` (publisher) and `s` (its sequence number); subscribers
//! derive latency, order and loss from them.

mod conn;
mod idle;
mod load;

use std::io::IsTerminal;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cobra_bench_event::{Events, Padding};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::client::{ConnArgs, apps_config_path, default_endpoint};
use conn::{Conn, ConnectParams, Endpoint, WireCounters};
use idle::{IdlePlan, IdleReport};
use load::{Clock, Lag, Live, PubPlan, SubPlan};

/// A failed bench run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Bad options (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server or the network failed us (exit 1).
    #[error("{0}")]
    Failed(String),
}

/// Options of `cobra bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    // No doc comment: clap would read it as help text (ConnArgs documents itself).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Publisher connections.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub publishers: usize,
    /// Subscriber connections.
    #[arg(long, short = 'm', default_value_t = 1)]
    pub subscribers: usize,
    /// Channels; publisher i and subscriber j use channel i % C and j % C.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Channel name prefix: channels are `<PREFIX>_0`, `<PREFIX>_1`, ... [default: `bench_<random run id>`]
    /// (a fixed name lets another process, e.g. a bot, read what the run published).
    #[arg(long)]
    pub channel_prefix: Option<String>,
    /// StreamSQL filter for every subscriber; `{channel}` is replaced by its channel. Loss is not
    /// counted (the tool cannot know what the filter should pass).
    #[arg(long, conflicts_with = "filter_pct")]
    pub filter: Option<String>,
    /// Filter every subscriber with `select * from <channel> where k < PCT`: each message carries
    /// `k = seq % 100`, so exactly PCT% pass and loss is still counted.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub filter_pct: Option<u8>,
    /// Messages per subscription data PDU (server side batching).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Size of each message's JSON, in bytes (at least ~100: the bench fields).
    #[arg(long, default_value_t = 300)]
    pub size: usize,
    /// What the padding of each message is: `random` letters (no message repeats another, the
    /// hardest case for deflate) or telemetry `words` that repeat from message to message as a
    /// real stream's values do [default: random]
    #[arg(long, default_value = "random")]
    pub padding: Padding,
    /// Total publish rate in messages/s over all publishers; 0 = as fast as acks allow.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Unacknowledged publishes per publisher at most (flow control in max-rate mode).
    #[arg(long, default_value_t = 256)]
    pub window: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Idle authenticated connections to open and hold during the run.
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// Subscriber connections that subscribe (like subscriber j to channel j % C) and then
    /// never read their socket: how much a stuck reader costs the publishers and the others.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Receive buffer (SO_RCVBUF, bytes) of the `--stalled` and `--paused` connections
    /// [default: the system's]: small, the server meets a full socket sooner (the kernel's
    /// autotuned buffers can otherwise hold megabytes of a pause).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub stalled_rcvbuf: Option<u32>,
    /// Subscriber connections (like subscriber j) that read `--slow-rate` messages per
    /// second at most, a message's worth of bytes at a time.
    #[arg(long, default_value_t = 0)]
    pub slow_readers: usize,
    /// Messages per second a `--slow-readers` subscriber reads.
    #[arg(long, default_value_t = 1.0)]
    pub slow_rate: f64,
    /// Subscriber connections (like subscriber j) that stop reading `--pause-at` seconds
    /// into the publishing for `--pause-for` seconds, then read on; the report counts exactly
    /// what each received and what the server said it missed.
    #[arg(long, default_value_t = 0)]
    pub paused: usize,
    /// Seconds into the publishing (warm-up included) when the `--paused` ones stop reading.
    #[arg(long, default_value_t = 1.0)]
    pub pause_at: f64,
    /// Seconds the `--paused` ones read nothing.
    #[arg(long, default_value_t = 10.0)]
    pub pause_for: f64,
    /// The `--paused` subscribe with `fast_forward` (skip what the history lost, told how
    /// many) instead of ending with `out_of_sync`.
    #[arg(long)]
    pub paused_fast_forward: bool,
    /// Every (reading) subscriber subscribes with `fast_forward`: when it falls behind the
    /// channel's history it goes on from the oldest message kept, told how many it missed
    /// (`skipped` in the report), instead of ending with `out_of_sync`. What a dashboard does,
    /// and the closest to NATS, which drops a slow consumer's messages and keeps it.
    #[arg(long)]
    pub fast_forward: bool,
    /// Seconds of publishing before `--duration` starts, not counted in `published_per_sec`
    /// (connections warm, laggards already behind).
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Loopback source addresses for the idle connections (127.0.0.2, ...) [default: one per 10k when over 10k].
    #[arg(long)]
    pub idle_sources: Option<usize>,
    /// Idle connections being opened at once at most.
    #[arg(long, default_value_t = 128)]
    pub idle_concurrency: usize,
    /// The server's pid (same machine): report its RSS per idle connection from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Runtime threads of the tool (1: a single-threaded runtime, the cheapest per message).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

/// What the laggard subscribers of one kind saw, summed (each reads its channel unfiltered).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LagReport {
    /// Subscriber connections.
    pub subscribers: usize,
    /// Messages published on their channels, summed over them.
    pub expected: u64,
    /// Messages received.
    pub received: u64,
    /// Messages the server said were skipped (`fast_forward` infos, `out_of_sync`).
    pub missed: u64,
    /// `fast_forward` infos.
    pub gaps: u64,
    /// Subscriptions ended with `out_of_sync`.
    pub out_of_sync: u64,
    /// Messages duplicated or out of order.
    pub out_of_order: u64,
    /// Gaps whose reported count differs from the jump in sequence numbers after them
    /// (exact with one publisher per channel).
    pub gap_mismatches: u64,
    /// Other notices and errors (the first few).
    pub notices: Vec<String>,
}

/// Everything a run measured (the `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Server endpoint.
    pub endpoint: String,
    /// Publisher connections.
    pub publishers: usize,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Subscribers that never read (`--stalled`).
    pub stalled: usize,
    /// Seconds of warm-up publishing before the measured `publish_seconds`.
    pub warmup_seconds: f64,
    /// The `--slow-readers`, if any.
    pub slow_readers: Option<LagReport>,
    /// The `--paused`, if any.
    pub paused: Option<LagReport>,
    /// Channels.
    pub channels: usize,
    /// The filter used, if any.
    pub filter: Option<String>,
    /// Bytes of each message's JSON.
    pub message_bytes: usize,
    /// permessage-deflate offered.
    pub deflate: bool,
    /// Target total rate (0: max).
    pub target_rate: f64,
    /// Seconds of publishing, as measured.
    pub publish_seconds: f64,
    /// Publishes sent.
    pub published: u64,
    /// Publishes acknowledged.
    pub acked: u64,
    /// Publishes refused.
    pub publish_errors: u64,
    /// `acked / publish_seconds`.
    pub published_per_sec: f64,
    /// Messages received by all subscribers.
    pub delivered: u64,
    /// `delivered / (last delivery - start)`.
    pub delivered_per_sec: f64,
    /// Deliveries expected from what was acknowledged (unknown with a free-form `--filter`).
    pub expected: Option<u64>,
    /// `expected - delivered`.
    pub lost: Option<u64>,
    /// Of `lost`, what the server announced it skipped (`fast_forward` infos, `--fast-forward`).
    pub skipped: u64,
    /// Deliveries that came as duplicates or out of order.
    pub out_of_order: u64,
    /// Deliveries without the bench fields.
    pub unstamped: u64,
    /// End to end latency.
    pub latency: Latency,
    /// Bytes the tool sent on its sockets (WebSocket frames included).
    pub bytes_out: u64,
    /// Bytes the tool received.
    pub bytes_in: u64,
    /// CPU seconds the tool used in user mode during the load phase.
    pub cpu_user_seconds: f64,
    /// CPU seconds in the kernel during the load phase.
    pub cpu_system_seconds: f64,
    /// Publishes per CPU second of the tool (its own cost per message).
    pub published_per_cpu_second: f64,
    /// The idle phase, if any.
    pub idle: Option<IdleReport>,
    /// Errors and notices (first few), verbatim.
    pub errors: Vec<String>,
}

/// Runs `cobra bench`; returns the exit status.
pub fn bench(args: BenchArgs) -> i32 {
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cobra bench: cannot start: {e}");
            return 1;
        }
    };
    let json = args.json;
    match runtime.block_on(run(args)) {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("cobra bench: {e}");
                        return 1;
                    }
                }
            } else {
                print!("{}", render(&report));
            }
            // A run where nothing got through is a failure, whatever the report says.
            if report.published > 0 && report.acked == 0 {
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("cobra bench: {e}");
            match e {
                BenchError::Usage(_) => 2,
                BenchError::Failed(_) => 1,
            }
        }
    }
}

fn validate(args: &BenchArgs) -> Result<Duration, BenchError> {
    let duration = super::positive_secs("--duration", args.duration).map_err(BenchError::Usage)?;
    if args.channels == 0 {
        return Err(BenchError::Usage("--channels must be at least 1".into()));
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        return Err(BenchError::Usage(format!(
            "--rate {}: expected >= 0",
            args.rate
        )));
    }
    if args.window == 0 {
        return Err(BenchError::Usage("--window must be at least 1".into()));
    }
    for (name, v) in [("--warmup", args.warmup), ("--pause-at", args.pause_at)] {
        if !(v >= 0.0 && v.is_finite() && v < 1e6) {
            return Err(BenchError::Usage(format!(
                "{name} {v}: expected seconds >= 0"
            )));
        }
    }
    for (name, v) in [
        ("--pause-for", args.pause_for),
        ("--slow-rate", args.slow_rate),
    ] {
        if !(v > 0.0 && v.is_finite() && v < 1e9) {
            return Err(BenchError::Usage(format!("{name} {v}: expected > 0")));
        }
    }
    if args.publishers > u32::MAX as usize {
        return Err(BenchError::Usage("--publishers: too many".into()));
    }
    Ok(duration)
}

async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    let duration = validate(&args)?;
    let timeout =
        super::positive_secs("--timeout", args.conn.timeout).map_err(BenchError::Usage)?;
    let endpoint_url = args.conn.endpoint.clone().unwrap_or_else(default_endpoint);
    let endpoint = Endpoint::parse(&endpoint_url)?;
    let appkey = args
        .conn
        .appkey
        .clone()
        .unwrap_or_else(|| "_pubsub".to_owned());
    let (role, secret) = super::client::resolve_credentials(
        &appkey,
        args.conn.rolename.as_deref(),
        args.conn.rolesecret.as_deref(),
    )
    .map_err(|e| BenchError::Usage(format!("{e} (apps config: {:?})", apps_config_path())))?;
    let addr = endpoint.resolve().await?;
    let params = Arc::new(ConnectParams {
        endpoint,
        addr,
        appkey,
        role,
        secret,
        deflate: !args.conn.no_deflate,
    });
    let counters = Arc::new(WireCounters::default());
    let (stop_idle_tx, stop_idle) = watch::channel(false);
    let mut errors = Vec::new();

    // 1. Idle connections first, so the load runs with them held.
    let idle = if args.idle > 0 {
        let plan = IdlePlan {
            count: args.idle,
            sources: idle::sources(args.idle, args.idle_sources, addr.ip()),
            concurrency: args.idle_concurrency,
            server_pid: args.server_pid,
            deadline: timeout.max(Duration::from_secs(10)) * 6,
            progress: !args.quiet,
        };
        Some(idle::open(params.clone(), plan, counters.clone(), stop_idle).await)
    } else {
        None
    };

    // 2. Subscribers, each subscribed before any publisher starts.
    let run_id = format!("{:08x}", rand::random::<u32>());
    let prefix = args
        .channel_prefix
        .clone()
        .unwrap_or_else(|| format!("bench_{run_id}"));
    let channel = |i: usize| format!("{prefix}_{}", i % args.channels);
    let filter_for = |ch: &str| match (&args.filter, args.filter_pct) {
        (Some(f), _) => Some(f.replace("{channel}", ch)),
        (None, Some(pct)) => Some(format!("select * from `{ch}` where k < {pct}")),
        (None, None) => None,
    };
    let clock = Clock::new();
    let live = Arc::new(Live::default());
    let (stop_subs_tx, stop_subs) = watch::channel(false);
    let (stop_pubs_tx, stop_pubs) = watch::channel(false);
    let mut setups = JoinSet::new();
    for j in 0..args.subscribers {
        let plan = SubPlan {
            channel: channel(j),
            subscription_id: format!("s{j}"),
            filter: filter_for(&channel(j)),
            batch_size: args.batch_size,
            fast_forward: args.fast_forward,
        };
        let (params, counters) = (params.clone(), counters.clone());
        setups.spawn(async move {
            let mut conn = Conn::open(&params, None, counters).await?;
            load::subscribe(&mut conn, &plan).await?;
            Ok::<_, BenchError>((conn, Kind::Reader, j))
        });
    }
    // Stalled, slow and paused ones: subscribed like subscriber j, they differ in how they read.
    let laggards = (0..args.stalled)
        .map(|j| (j, Kind::Stalled))
        .chain((0..args.slow_readers).map(|j| (j, Kind::Slow)))
        .chain((0..args.paused).map(|j| (j, Kind::Paused)));
    for (j, kind) in laggards {
        let plan = SubPlan {
            channel: channel(j),
            subscription_id: format!("{}{j}", kind.name()),
            filter: None,
            batch_size: args.batch_size,
            fast_forward: kind == Kind::Paused && args.paused_fast_forward,
        };
        let rcvbuf = if matches!(kind, Kind::Stalled | Kind::Paused) {
            args.stalled_rcvbuf
        } else {
            None
        };
        let (params, counters) = (params.clone(), counters.clone());
        setups.spawn(async move {
            let mut conn = Conn::open_with(&params, None, rcvbuf, counters).await?;
            load::subscribe(&mut conn, &plan).await?;
            Ok::<_, BenchError>((conn, kind, j))
        });
    }
    let mut sub_tasks = JoinSet::new();
    let mut stalled = Vec::new();
    let mut lag_conns = Vec::new();
    while let Some(r) = with_timeout(timeout, setups.join_next()).await? {
        let (conn, kind, j) =
            r.map_err(|e| BenchError::Failed(format!("subscriber setup: {e}")))??;
        match kind {
            Kind::Reader => {}
            Kind::Stalled => {
                stalled.push(conn); // held open, never read, until the run ends
                continue;
            }
            Kind::Slow | Kind::Paused => {
                lag_conns.push((conn, kind, j)); // started with the publishers
                continue;
            }
        }
        sub_tasks.spawn(load::subscriber(
            conn,
            args.publishers,
            clock,
            live.clone(),
            stop_subs.clone(),
        ));
    }

    // 3. Publishers: connect them all, then start together.
    let events = Arc::new(Events::with_padding(args.size, args.padding));
    let mut pub_setups = JoinSet::new();
    for _ in 0..args.publishers {
        let (params, counters) = (params.clone(), counters.clone());
        pub_setups.spawn(async move { Conn::open(&params, None, counters).await });
    }
    let mut pub_conns = Vec::new();
    while let Some(r) = with_timeout(timeout, pub_setups.join_next()).await? {
        pub_conns.push(r.map_err(|e| BenchError::Failed(format!("publisher setup: {e}")))??);
    }
    let rusage_start = CpuTime::now();
    let started = Instant::now();
    let start_ns = clock.now_ns();
    let pause_at = tokio::time::Instant::from_std(started) + Duration::from_secs_f64(args.pause_at);
    let pause = Duration::from_secs_f64(args.pause_for);
    let pause_end = started + Duration::from_secs_f64(args.pause_at) + pause;
    let mut lag_tasks = JoinSet::new();
    for (conn, kind, j) in lag_conns {
        let lag = if kind == Kind::Slow {
            Lag::Slow {
                rate: args.slow_rate,
                chunk: args.size.max(100) + 120,
            }
        } else {
            Lag::Paused {
                at: pause_at,
                pause,
            }
        };
        let (live, stop) = (live.clone(), stop_subs.clone());
        let publishers = args.publishers;
        lag_tasks.spawn(async move {
            (
                kind,
                j,
                load::laggard(conn, lag, publishers, live, stop).await,
            )
        });
    }
    let mut pub_tasks = JoinSet::new();
    let mut pub_channels = Vec::new();
    for (i, conn) in pub_conns.into_iter().enumerate() {
        let plan = PubPlan {
            index: i as u32,
            channel: channel(i),
            rate: args.rate / args.publishers.max(1) as f64,
            window: args.window,
            events: events.clone(),
        };
        pub_channels.push(i % args.channels);
        let (live, stop) = (live.clone(), stop_pubs.clone());
        pub_tasks.spawn(async move { (i, load::publisher(conn, plan, clock, live, stop).await) });
    }
    let mut progress = Progress::new(!args.quiet);
    let warmup = Duration::from_secs_f64(args.warmup);
    let measure_start = started + warmup;
    let publish_end = measure_start + duration;
    let mut acked_at_warmup = None;
    while Instant::now() < publish_end {
        let next = if Instant::now() < measure_start {
            measure_start
        } else {
            publish_end
        };
        tokio::time::sleep(Duration::from_millis(200).min(next - Instant::now())).await;
        if acked_at_warmup.is_none() && Instant::now() >= measure_start {
            acked_at_warmup = Some((live.acked.load(Ordering::Relaxed), Instant::now()));
        }
        report_progress(&mut progress, &live, started);
    }
    let acked_at_end = live.acked.load(Ordering::Relaxed);
    let _ = stop_pubs_tx.send(true);
    let publish_seconds = started.elapsed().as_secs_f64();
    // With a warm-up, the rate is what was acknowledged during the measured window only.
    let measured_rate = acked_at_warmup
        .filter(|_| !warmup.is_zero())
        .map(|(a, t)| acked_at_end.saturating_sub(a) as f64 / t.elapsed().as_secs_f64().max(1e-9));
    let mut sent = vec![0u64; args.publishers];
    let (mut acked, mut publish_errors) = (0, 0);
    while let Some(r) = pub_tasks.join_next().await {
        let (i, r) = r.map_err(|e| BenchError::Failed(format!("publisher: {e}")))?;
        match r {
            Ok(res) => {
                sent[i] = res.sent;
                acked += res.acked;
                publish_errors += res.errors;
                if let Some(e) = res.first_error {
                    push_error(&mut errors, e);
                }
            }
            Err(e) => push_error(&mut errors, format!("publisher {i}: {e}")),
        }
    }

    // 4. Expected deliveries, then drain until they are in or deliveries stop coming.
    let expected = match (&args.filter, args.filter_pct) {
        (Some(_), _) => None,
        (None, pct) => Some(
            (0..args.subscribers)
                .map(|j| {
                    sent.iter()
                        .enumerate()
                        .filter(|(i, _)| pub_channels.get(*i) == Some(&(j % args.channels)))
                        .map(|(_, &n)| pct.map_or(n, |p| passing(n, u64::from(p))))
                        .sum::<u64>()
                })
                .sum::<u64>(),
        ),
    };
    // What each laggard's channel got: the same for a slow and a paused one.
    let sent_on = |j: usize| -> u64 {
        sent.iter()
            .enumerate()
            .filter(|(i, _)| pub_channels.get(*i) == Some(&(j % args.channels)))
            .map(|(_, &n)| n)
            .sum()
    };
    let paused_expected: u64 = (0..args.paused).map(sent_on).sum();
    let progress_now = || {
        live.delivered.load(Ordering::Relaxed)
            + live.skipped.load(Ordering::Relaxed)
            + live.paused_accounted.load(Ordering::Relaxed)
    };
    let mut last = progress_now();
    let mut last_change = Instant::now();
    loop {
        let now_delivered =
            live.delivered.load(Ordering::Relaxed) + live.skipped.load(Ordering::Relaxed);
        if expected.is_none_or(|e| now_delivered >= e)
            && live.paused_accounted.load(Ordering::Relaxed) >= paused_expected
            && (expected.is_some() || args.paused > 0)
        {
            break;
        }
        let now_progress = progress_now();
        if now_progress != last {
            last = now_progress;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(1)
            && (args.paused == 0 || Instant::now() > pause_end)
        {
            // (A pause outlasting the publishing is waited for: the catch-up comes after it.)
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        report_progress(&mut progress, &live, started);
    }
    let cpu = CpuTime::now().since(&rusage_start);
    progress.done();
    let _ = stop_subs_tx.send(true);
    let mut hist = load::new_histogram();
    let (mut delivered, mut out_of_order, mut unstamped, mut skipped) = (0, 0, 0, 0);
    while let Some(r) = sub_tasks.join_next().await {
        match r.map_err(|e| BenchError::Failed(format!("subscriber: {e}")))? {
            Ok(res) => {
                delivered += res.received;
                skipped += res.skipped;
                out_of_order += res.out_of_order;
                unstamped += res.unstamped;
                let _ = hist.add(&res.latency_us);
                for n in res.notices {
                    push_error(&mut errors, n);
                }
            }
            Err(e) => push_error(&mut errors, format!("subscriber: {e}")),
        }
    }
    let (mut slow_readers, mut paused) = (None::<LagReport>, None::<LagReport>);
    while let Some(r) = lag_tasks.join_next().await {
        let (kind, j, r) = r.map_err(|e| BenchError::Failed(format!("laggard: {e}")))?;
        let slot = if kind == Kind::Slow {
            &mut slow_readers
        } else {
            &mut paused
        };
        let rep = slot.get_or_insert_with(LagReport::default);
        rep.subscribers += 1;
        rep.expected += sent_on(j);
        match r {
            Ok(res) => {
                rep.received += res.received;
                rep.missed += res.missed;
                rep.gaps += res.gaps;
                rep.out_of_sync += u64::from(res.out_of_sync);
                rep.out_of_order += res.out_of_order;
                rep.gap_mismatches += res.gap_mismatches;
                for n in res.notices {
                    if rep.notices.len() < 5 {
                        rep.notices.push(n);
                    }
                }
            }
            Err(e) => {
                if rep.notices.len() < 5 {
                    rep.notices.push(format!("{}{j}: {e}", kind.name()));
                }
            }
        }
    }
    let _ = stop_idle_tx.send(true);
    drop(stalled);
    if let Some(e) = idle.as_ref().and_then(|i| i.first_error.clone()) {
        push_error(&mut errors, format!("idle: {e}"));
    }
    let last_ns = live.last_delivery_ns.load(Ordering::Relaxed);
    let delivery_seconds = (last_ns.saturating_sub(start_ns)) as f64 / 1e9;
    Ok(Report {
        endpoint: endpoint_url,
        publishers: args.publishers,
        subscribers: args.subscribers,
        stalled: args.stalled,
        warmup_seconds: warmup.as_secs_f64(),
        slow_readers,
        paused,
        channels: args.channels,
        filter: filter_for(&channel(0)),
        message_bytes: events.message_bytes(),
        deflate: params.deflate,
        target_rate: args.rate,
        publish_seconds,
        published: sent.iter().sum(),
        acked,
        publish_errors,
        published_per_sec: measured_rate.unwrap_or(acked as f64 / publish_seconds),
        delivered,
        delivered_per_sec: if delivery_seconds > 0.0 {
            delivered as f64 / delivery_seconds
        } else {
            0.0
        },
        expected,
        lost: expected.map(|e| e.saturating_sub(delivered)),
        skipped,
        out_of_order,
        unstamped,
        latency: Latency {
            count: hist.len(),
            p50_us: hist.value_at_quantile(0.50),
            p99_us: hist.value_at_quantile(0.99),
            p999_us: hist.value_at_quantile(0.999),
            max_us: hist.max(),
            mean_us: hist.mean(),
        },
        bytes_out: counters.bytes_out.load(Ordering::Relaxed),
        bytes_in: counters.bytes_in.load(Ordering::Relaxed),
        cpu_user_seconds: cpu.0,
        cpu_system_seconds: cpu.1,
        published_per_cpu_second: if cpu.0 + cpu.1 > 0.0 {
            sent.iter().sum::<u64>() as f64 / (cpu.0 + cpu.1)
        } else {
            0.0
        },
        idle,
        errors,
    })
}

/// How a subscriber connection of the run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// As fast as it can (`--subscribers`).
    Reader,
    /// Never (`--stalled`).
    Stalled,
    /// `--slow-rate` messages per second (`--slow-readers`).
    Slow,
    /// Normally but for a pause (`--paused`).
    Paused,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Reader => "s",
            Kind::Stalled => "stalled",
            Kind::Slow => "slow",
            Kind::Paused => "paused",
        }
    }
}

/// How many of the sequence numbers `0..n` have `s % 100 < pct`.
fn passing(n: u64, pct: u64) -> u64 {
    (n / 100) * pct + (n % 100).min(pct)
}

fn push_error(errors: &mut Vec<String>, e: String) {
    if errors.len() < 10 {
        errors.push(e);
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = T>,
) -> Result<T, BenchError> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| BenchError::Failed(format!("no answer from the server within {timeout:?}")))
}

/// User and system CPU seconds of this process.
struct CpuTime(f64, f64);

impl CpuTime {
    fn now() -> CpuTime {
        use nix::sys::resource::{UsageWho, getrusage};
        match getrusage(UsageWho::RUSAGE_SELF) {
            Ok(u) => {
                let secs =
                    |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
                CpuTime(secs(u.user_time()), secs(u.system_time()))
            }
            Err(_) => CpuTime(0.0, 0.0),
        }
    }
    fn since(&self, start: &CpuTime) -> (f64, f64) {
        (self.0 - start.0, self.1 - start.1)
    }
}

fn report_progress(progress: &mut Progress, live: &Live, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    progress.line(format_args!(
        "[{secs:5.1}s] published {} ({:.0}/s), delivered {} ({:.0}/s)",
        live.acked.load(Ordering::Relaxed),
        live.acked.load(Ordering::Relaxed) as f64 / secs,
        live.delivered.load(Ordering::Relaxed),
        live.delivered.load(Ordering::Relaxed) as f64 / secs,
    ));
}

/// A progress line on stderr: rewritten in place (`\r`) on a terminal, one line a second otherwise.
pub(crate) struct Progress {
    enabled: bool,
    tty: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        if !self.enabled {
            return;
        }
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        if self.last.is_some_and(|l| l.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[2K{args}")
        } else {
            writeln!(err, "{args}")
        };
        let _ = err.flush();
    }

    fn done(&mut self) {
        if self.enabled && self.tty && self.last.is_some() {
            eprintln!();
        }
        self.last = None;
    }
}

/// The human-readable report.
fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cobra bench → {}: {} publisher(s), {} subscriber(s), {} channel(s), {} B messages, deflate {}{}",
        r.endpoint,
        r.publishers,
        r.subscribers,
        r.channels,
        r.message_bytes,
        if r.deflate { "on" } else { "off" },
        r.filter
            .as_deref()
            .map(|f| format!(", filter {f:?}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "published  {:>12} acked in {:.2} s = {:>10.0} msg/s ({} errors)",
        r.acked, r.publish_seconds, r.published_per_sec, r.publish_errors
    );
    let _ = writeln!(
        s,
        "delivered  {:>12}              = {:>10.0} msg/s (expected {}, lost {}, out of order {})",
        r.delivered,
        r.delivered_per_sec,
        r.expected.map_or("?".into(), |e| e.to_string()),
        r.lost.map_or("?".into(), |e| e.to_string()),
        r.out_of_order
    );
    let _ = writeln!(
        s,
        "latency    p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        r.latency.p50_us, r.latency.p99_us, r.latency.p999_us, r.latency.max_us
    );
    let _ = writeln!(
        s,
        "wire       {} B out, {} B in; tool CPU {:.2} s user + {:.2} s sys ({:.0} publishes per CPU second)",
        r.bytes_out,
        r.bytes_in,
        r.cpu_user_seconds,
        r.cpu_system_seconds,
        r.published_per_cpu_second
    );
    for (name, lag) in [("slow", &r.slow_readers), ("paused", &r.paused)] {
        if let Some(l) = lag {
            let _ = writeln!(
                s,
                "{name:<10} {} subscriber(s): received {} + missed {} of {} published ({} gaps, {} out_of_sync, {} out of order, {} gap mismatches)",
                l.subscribers,
                l.received,
                l.missed,
                l.expected,
                l.gaps,
                l.out_of_sync,
                l.out_of_order,
                l.gap_mismatches
            );
            for n in &l.notices {
                let _ = writeln!(s, "note       {name}: {n}");
            }
        }
    }
    if let Some(i) = &r.idle {
        let _ = writeln!(
            s,
            "idle       {}/{} held ({} failed) in {:.1} s; server RSS {} → {} KiB = {} B per connection",
            i.held,
            i.requested,
            i.failed,
            i.connect_seconds,
            i.server_rss_before_kib
                .map_or("?".into(), |v| v.to_string()),
            i.server_rss_after_kib.map_or("?".into(), |v| v.to_string()),
            i.server_rss_per_connection_bytes
                .map_or("?".into(), |v| format!("{v:.0}"))
        );
    }
    for e in &r.errors {
        let _ = writeln!(s, "note       {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_counts_the_filter_selectivity() {
        assert_eq!(passing(0, 10), 0);
        assert_eq!(passing(5, 10), 5);
        assert_eq!(passing(100, 10), 10);
        assert_eq!(passing(250, 10), 30);
        assert_eq!(passing(250, 100), 250);
        assert_eq!(passing(250, 0), 0);
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("ws://127.0.0.1:9000").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 9000, "/v2")
        );
        let e = Endpoint::parse("ws://[::1]:9000/x").unwrap();
        assert_eq!((e.host.as_str(), e.path.as_str()), ("::1", "/x"));
        assert!(matches!(
            Endpoint::parse("wss://h:1"),
            Err(BenchError::Usage(_))
        ));
        assert!(matches!(
            Endpoint::parse("ws://h:port"),
            Err(BenchError::Usage(_))
        ));
        assert!(matches!(
            Endpoint::parse("ws://:80"),
            Err(BenchError::Usage(_))
        ));
    }
}
