//! A signalling-only program: a bot that registers and answers every MESSAGE with an echo,
//! with no media at all (`Phone<NoMedia>`, whose calls are refused as incompatible).
//!
//! ```sh
//! cargo run -p sansip-tokio --example echo_bot                      # self-contained demo
//! cargo run -p sansip-tokio --example echo_bot -- sip:HOST:PORT;transport=udp sip:bot@DOMAIN PASSWORD
//! ```
//! Without arguments it starts the embedded registrar on loopback, runs the bot there, sends
//! it one message from a second phone, prints the echo and exits.

use std::sync::Arc;

use sansip_tokio::core::auth::DigestCredentials;
use sansip_tokio::core::message::NameAddr;
use sansip_tokio::core::registrar::RegistrarConfig;
use sansip_tokio::core::session::NoMedia;
use sansip_tokio::core::ua::{Event, UaConfig};
use sansip_tokio::{Phone, PhoneConfig, PhoneError, RegistrarServer, TokioRuntime};

#[tokio::main]
async fn main() -> Result<(), PhoneError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [server, aor, password] = &args[..] {
        // The builder parses the AOR and locates the server (RFC 3263).
        let bot = sansip_tokio::builder(aor.as_str())
            .password(password.as_str())
            .server(server.as_str())
            .start_with::<NoMedia>()
            .await?;
        return serve(bot).await;
    }
    // Self-contained: registrar, bot, and a user who talks to it.
    let mut config = RegistrarConfig::new("example.com");
    config.users = vec![
        ("bot".into(), "bot-pw".into()),
        ("ann".into(), "ann-pw".into()),
    ];
    let registrar = RegistrarServer::start(
        Arc::new(TokioRuntime),
        "127.0.0.1:0".parse().expect("loopback"),
        config,
        1,
    )?;
    let phone = |user: &str| {
        let mut ua = UaConfig::new(format!("sip:{user}@example.com"));
        ua.credentials = Some(DigestCredentials::new(user, format!("{user}-pw")));
        sansip_tokio::phone::<NoMedia>(PhoneConfig::new(ua, registrar.local_addr()))
    };
    let (bot, ann) = (phone("bot")?, phone("ann")?);
    tokio::spawn(serve(bot));
    ann.connect().await?;
    ann.register(300).await?;
    // Give the bot its registration before talking to it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ann.message("bot", "text/plain", "hello, bot").await?;
    while let Some(e) = ann.next_event().await {
        if let Event::MessageReceived { body, .. } = e {
            println!("ann got: {}", String::from_utf8_lossy(&body));
            break;
        }
    }
    Ok(())
}

/// Registers, then echoes every MESSAGE back to its sender.
async fn serve(bot: Phone<NoMedia>) -> Result<(), PhoneError> {
    bot.connect().await?;
    bot.register(300).await?;
    while let Some(e) = bot.next_event().await {
        match e {
            Event::MessageReceived { from, body, .. } => {
                // From is a name-addr; its URI is who to answer.
                let Ok(to) = NameAddr::parse(&from).map(|n| n.uri().to_string()) else {
                    eprintln!("cannot answer {from:?}");
                    continue;
                };
                let text = format!("echo: {}", String::from_utf8_lossy(&body));
                if let Err(e) = bot.message(&to, "text/plain", &text).await {
                    eprintln!("echo to {to} failed: {e}");
                }
            }
            Event::IncomingCall { call, .. } => {
                // No media here: refuse calls politely.
                let _ = bot
                    .with(move |ua, now| ua.decline(now, call, Some(488)))
                    .await;
            }
            _ => {}
        }
    }
    Ok(())
}
