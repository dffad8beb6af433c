//! `fake-openai`: the test kit's fake OpenAI-compatible server as a process of its own, for
//! benchmarks that put the real provider path (ai-service `PROVIDER=openai`) under load.
//!
//! Every request to `POST /v1/chat/completions` gets a streamed answer in the real wire
//! format from pre-rendered events (see `test_support::upstream::Generate`): `--tokens`
//! tokens at `--rate` tokens/s, or as fast as possible with `--rate 0`; a first line
//! `!demo tokens=N rate=R` in the request's last user message overrides both for that
//! request. Nothing is recorded, so a long run does not grow. It prints one line with its
//! address once it listens, and exits 0 on SIGINT or SIGTERM; a bad flag exits 2 with one
//! line on stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use test_support::upstream::{FakeOpenAi, Generate, Plan, Recording, Reply};

#[derive(Parser, Debug)]
#[command(
    name = "fake-openai",
    version,
    about = "A fake OpenAI-compatible server (POST /v1/chat/completions, streaming) for load tests.",
    long_about = "A fake OpenAI-compatible server for load tests. Every request gets a streamed \
                  answer in OpenAI's Chat Completions wire format (role delta, one data: event \
                  per token, finish_reason, the usage chunk when stream_options.include_usage \
                  is set, [DONE]), rendered once at start so that a token costs a copy. A first \
                  line `!demo tokens=N rate=R` in the last user message overrides --tokens and \
                  --rate for that request. Point the ai-service at it with PROVIDER=openai \
                  OPENAI_BASE_URL=http://ADDR/v1. Prints `fake-openai: listening on \
                  http://ADDR/v1` once ready; SIGINT or SIGTERM stop it."
)]
struct Args {
    /// Address to listen on (port 0: any free port; the line printed at start names it).
    #[arg(long, env = "FAKE_OPENAI_ADDR", default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Tokens per answer (a request's `!demo tokens=N` overrides it).
    #[arg(long, env = "FAKE_OPENAI_TOKENS", default_value_t = 60)]
    tokens: u64,
    /// Tokens per second per answer; 0: as fast as the socket takes them (a request's
    /// `!demo rate=R` overrides it).
    #[arg(long, env = "FAKE_OPENAI_RATE", default_value_t = 0.0)]
    rate: f64,
    /// The model every chunk names.
    #[arg(long, env = "FAKE_OPENAI_MODEL", default_value = "fake-model")]
    model: String,
    /// Runtime worker threads.
    #[arg(long, env = "FAKE_OPENAI_THREADS", default_value_t = 1)]
    threads: usize,
}

/// A flag value clap accepted but the server cannot use.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("--rate must be a finite number ≥ 0, got {0}")]
    Rate(f64),
    #[error("--model must not be empty")]
    Model,
    #[error("--threads must be at least 1")]
    Threads,
}

fn validate(a: &Args) -> Result<(), ArgError> {
    if !a.rate.is_finite() || a.rate < 0.0 {
        return Err(ArgError::Rate(a.rate));
    }
    if a.model.trim().is_empty() {
        return Err(ArgError::Model);
    }
    if a.threads == 0 {
        return Err(ArgError::Threads);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = validate(&args) {
        eprintln!("fake-openai: {e}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fake-openai: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let server = match FakeOpenAi::bind(args.addr, Recording::Off).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-openai: cannot listen on {}: {e}", args.addr);
            return ExitCode::from(2);
        }
    };
    let plan = Plan {
        tokens: args.tokens,
        rate: args.rate,
    };
    server.set_default(Reply::Generate(Arc::new(Generate::new(&args.model, plan))));
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "fake-openai: listening on http://{}:{}/v1 ({} tokens per answer at {})",
        args.addr.ip(),
        server.port,
        args.tokens,
        if args.rate > 0.0 {
            format!("{} tokens/s", args.rate)
        } else {
            "full speed".to_string()
        }
    );
    let _ = out.flush();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-openai: cannot watch SIGTERM: {e}");
            return ExitCode::from(1);
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "fake-openai: stopping after {} requests on {} connections",
        server.received(),
        server.connections()
    );
    ExitCode::SUCCESS
}
