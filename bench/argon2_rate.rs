//! The argon2id ceiling for the password grant: how many verifications per second the
//! server's own hashing pool (`latchkey::crypto::PasswordHasher`, default parameters) can do
//! on this machine, with nothing but hashing going on.
//!
//! Usage: cargo run --release --example argon2_rate -- [THREADS] [TASKS] [SECONDS]
//! (defaults: 2 threads, as the server's pool on a 2-core machine; 64 concurrent tasks, as
//! wrk's 64 connections; 10 seconds). Prints one summary line, machine-readable:
//!   argon2_rate threads=2 tasks=64 seconds=10.01 verifications=... rate=.../s m=19456 t=2 p=1

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey::crypto::{Argon2Settings, PasswordHasher, Verification};
use secrecy::SecretString;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let threads = arg(1, 2).max(1) as usize;
    let tasks = arg(2, 64).max(1) as usize;
    let seconds = arg(3, 10).max(1);
    let settings = Argon2Settings::default();

    let hasher = PasswordHasher::new(settings, threads).await?;
    let password = "bench-password-1";
    let phc = hasher.hash(SecretString::from(password)).await?;
    // One verification up front, so that a wrong setup fails loudly instead of measuring it.
    match hasher
        .verify(Some(phc.clone()), SecretString::from(password))
        .await?
    {
        Verification::Valid { rehashed: None } => {}
        other => anyhow::bail!("the warm-up verification failed: {other:?}"),
    }

    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (hasher, phc, done, stop) = (hasher.clone(), phc.clone(), done.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let v = hasher
                    .verify(Some(phc.clone()), SecretString::from(password))
                    .await?;
                if !matches!(v, Verification::Valid { .. }) {
                    anyhow::bail!("a verification failed");
                }
                // Count only verifications that finished inside the window.
                if !stop.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed);
    for h in handles {
        h.await??;
    }
    println!(
        "argon2_rate threads={threads} tasks={tasks} seconds={elapsed:.2} verifications={count} \
         rate={:.1}/s m={} t={} p={}",
        count as f64 / elapsed,
        settings.memory_kib,
        settings.iterations,
        settings.parallelism
    );
    Ok(())
}
