//! Quick start: call someone and play them a WAV file.
//!
//! ```text
//! SANSIP_PASSWORD=secret cargo run -p sansip-tokio --example quickstart -- \
//!     sip:alice@example.com wss://sip.example.com/ws sip:bob@example.com hello.wav
//! ```
use std::time::Duration;

use sansip_tokio::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [aor, server, target, wav] = args()?;
    let phone = sansip_tokio::builder(aor)
        .password(std::env::var("SANSIP_PASSWORD")?)
        .server(server)
        .start()
        .await?;
    phone.register(600).await?;

    let call = phone.call(&target, CallOptions::default()).await?;
    call.answered().await?;
    let greeting = WavSource::open(wav)?;
    let length = greeting.duration();
    call.play(greeting).await?;
    tokio::time::sleep(length).await;
    call.hangup().await?;

    phone.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}

fn args() -> Result<[String; 4], &'static str> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.try_into()
        .map_err(|_| "usage: quickstart AOR SERVER TARGET FILE.wav (password in SANSIP_PASSWORD)")
}
