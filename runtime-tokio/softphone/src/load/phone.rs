//! `softphone load … --engine phone`: the same calls through the async [`Phone`] on a
//! one-thread tokio runtime, each call its own task as an application would write it
//! (`call`, `answered`, `hangup`, `ended`; `call_handle` and `answer` on the other side).
//! Set beside the sans-IO loop, it says what the convenient API costs.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use sansip_media::core::session::{EndCause, FakeSdp, Originator};
use sansip_media::core::ua::{CallOptions, Event};
use sansip_tokio::{Phone, PhoneConfig, PhoneError};
use serde_json::{Value, json};

use super::{Engine, LINGER, Tally, clock, cpu_time, report};

/// Events the phone may hold before the application reads them: a load has many calls
/// starting at once, and a dropped `IncomingCall` would be a call never answered.
const EVENT_CAPACITY: usize = 1 << 16;

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))
}

fn start_phone(bind: SocketAddr, server: SocketAddr) -> Result<Phone<FakeSdp>, String> {
    let mut config = PhoneConfig::new(super::load_config(bind), server);
    config.bind = bind;
    config.event_capacity = EVENT_CAPACITY;
    sansip_tokio::phone(config).map_err(|e| format!("phone: {e}"))
}

/// The caller: a task per call, started every `interval`.
pub(super) fn call(
    target: &str,
    remote: SocketAddr,
    interval: Duration,
    calls: u64,
    hold: Duration,
    bind: SocketAddr,
    max_seconds: u64,
) -> Result<Value, String> {
    runtime()?.block_on(async move {
        let phone = start_phone(bind, remote)?;
        // Each call's task follows its own call; the phone-wide stream is not read.
        drop(phone.take_events().await);
        let start = clock();
        let cpu_start = cpu_time();
        let give_up = start + Duration::from_secs(max_seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..calls {
            let due = start + interval.mul_f64(i as f64);
            if due >= give_up {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            let (phone, target) = (phone.clone(), target.to_string());
            tasks.spawn(async move {
                let call = phone.call(&target, CallOptions::default()).await?;
                call.answered().await?;
                if !hold.is_zero() {
                    tokio::time::sleep(hold).await;
                }
                call.hangup().await?;
                let end = call.ended().await?;
                Ok::<_, PhoneError>(
                    end.cause == EndCause::Bye && end.originator == Originator::Local,
                )
            });
        }
        let mut tally = Tally::default();
        let mut last_end = start;
        let wait_all = async {
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(Ok(true)) => tally.completed += 1,
                    Ok(Ok(false)) => tally.failed += 1,
                    Ok(Err(e)) => {
                        tally.failed += 1;
                        *tally.failures.entry(e.to_string()).or_default() += 1;
                    }
                    Err(e) => return Err(format!("call task: {e}")),
                }
                last_end = clock();
            }
            // As the sans-IO caller does: the BYEs' answers are in.
            while phone
                .with(|ua, _| ua.requests_in_flight())
                .await
                .unwrap_or(0)
                > 0
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(())
        };
        match tokio::time::timeout_at(give_up.into(), wait_all).await {
            Ok(r) => r?,
            Err(_) => tasks.abort_all(),
        }
        tally.retransmissions = retransmissions(&phone).await;
        let report = report(
            "caller",
            Engine::Phone,
            phone.local_addr(),
            calls,
            &tally,
            last_end.saturating_duration_since(start),
            cpu_time().saturating_sub(cpu_start),
        );
        Ok(report)
    })
}

/// The callee: answers every call from its own task, and counts the calls the caller ends.
pub(super) fn answer(bind: SocketAddr, calls: u64, max_seconds: u64) -> Result<Value, String> {
    runtime()?.block_on(async move {
        // No server: the phone answers whoever calls, on the flow the INVITE came in on.
        let phone = start_phone(bind, bind)?;
        println!(
            "{}",
            json!({ "load": "callee", "listening": phone.local_addr().to_string() })
        );
        let mut events = phone
            .take_events()
            .await
            .ok_or("the phone's events were taken")?;
        let start = clock();
        let cpu_start = cpu_time();
        let give_up = start + Duration::from_secs(max_seconds);
        let mut tally = Tally::default();
        let (mut first, mut last_end) = (None, start);
        while tally.completed + tally.failed < calls {
            let event = match tokio::time::timeout_at(give_up.into(), events.next()).await {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => break,
            };
            match event {
                Event::IncomingCall { call, .. } => {
                    first.get_or_insert_with(clock);
                    let phone = phone.clone();
                    tokio::spawn(async move {
                        if let Ok(call) = phone.call_handle(call).await {
                            let _ = call.answer().await;
                        }
                    });
                }
                Event::CallEnded { end, .. } => {
                    last_end = clock();
                    if end.cause == EndCause::Bye && end.originator == Originator::Remote {
                        tally.completed += 1;
                    } else {
                        tally.failed += 1;
                        *tally
                            .failures
                            .entry(end.cause.as_str().to_string())
                            .or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        // As the sans-IO callee does: a BYE resent once still gets its 200.
        tokio::time::sleep_until((clock() + LINGER).min(give_up).into()).await;
        tally.retransmissions = retransmissions(&phone).await;
        let report = report(
            "callee",
            Engine::Phone,
            phone.local_addr(),
            calls,
            &tally,
            last_end.saturating_duration_since(first.unwrap_or(start)),
            cpu_time().saturating_sub(cpu_start),
        );
        Ok(report)
    })
}

async fn retransmissions(phone: &Phone<FakeSdp>) -> u64 {
    phone
        .with(|ua, _| ua.stats().retransmissions)
        .await
        .unwrap_or(0)
}
