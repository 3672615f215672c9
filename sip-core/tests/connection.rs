//! The connection policy in the core: OpenFlow on connect, jittered exponential backoff
//! with failover across servers, registering again after a reconnect, calls surviving on
//! the new flow, and CRLF keep-alives with a pong timeout.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use sansip_core::message::{Message, Method};
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{Event, Input, KeepAlive, Output, Server, UaConfig, UserAgent};

#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

fn config() -> UaConfig {
    let mut c = UaConfig::new("sip:alice@example.com");
    c.servers = vec![
        Server {
            transport: Transport::Tcp,
            address: "192.0.2.1:5060".into(),
        },
        Server {
            transport: Transport::Ws,
            address: "ws://192.0.2.2:8080".into(),
        },
    ];
    c
}

fn drain(ua: &mut UserAgent) -> Vec<Output> {
    std::iter::from_fn(|| ua.poll_output()).collect()
}

fn open(ua: &mut UserAgent, now: Instant, transport: Transport, port: u16) -> FlowId {
    let flow = ua.add_flow(FlowInfo {
        transport,
        local: format!("192.0.2.10:{port}").parse().unwrap(),
        remote: "192.0.2.1:5060".parse().unwrap(),
    });
    ua.handle_input(now, Input::FlowOpened { flow });
    flow
}

fn retry_in(out: &[Output]) -> Option<Duration> {
    out.iter().find_map(|o| match o {
        Output::Event(Event::Disconnected { retry_in, .. }) => *retry_in,
        _ => None,
    })
}

#[test]
fn reconnects_with_backoff_across_servers_and_registers_again() {
    let t0 = start();
    let mut ua: UserAgent = UserAgent::new(config(), t0, 3);
    ua.connect(t0);
    assert_eq!(
        drain(&mut ua),
        [Output::OpenFlow {
            server: 0,
            transport: Transport::Tcp
        }]
    );
    let flow = open(&mut ua, t0, Transport::Tcp, 40000);
    assert!(
        drain(&mut ua)
            .iter()
            .any(|o| matches!(o, Output::Event(Event::Connected { flow: f }) if *f == flow))
    );
    assert!(ua.is_connected());
    ua.register(t0, 600).unwrap();
    assert!(
        drain(&mut ua)
            .iter()
            .any(|o| matches!(o, Output::Transmit { flow: f, .. } if *f == flow))
    );

    // The flow drops: the next attempt is 1–2 s away, on the same server (it worked).
    ua.handle_input(t0, Input::FlowClosed { flow });
    let first = retry_in(&drain(&mut ua)).unwrap();
    assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&first));
    assert!(!ua.is_connected());
    let mut now = t0 + first;
    ua.handle_timeout(now);
    assert_eq!(
        drain(&mut ua),
        [Output::OpenFlow {
            server: 0,
            transport: Transport::Tcp
        }]
    );
    // Failed attempts fail over to the next server, doubling the delay up to 30 s.
    let mut delays = Vec::new();
    for n in 0..6 {
        ua.handle_input(
            now,
            Input::ConnectFailed {
                server: n % 2,
                reason: "refused".into(),
            },
        );
        let d = retry_in(&drain(&mut ua)).unwrap();
        delays.push(d);
        now += d;
        ua.handle_timeout(now);
        let out = drain(&mut ua);
        assert!(
            matches!(out[..], [Output::OpenFlow { server, .. }] if server == (n + 1) % 2),
            "{out:?}"
        );
    }
    let ceilings = [4, 8, 16, 30, 30, 30];
    for (d, c) in delays.iter().zip(ceilings) {
        let c = Duration::from_secs(c);
        assert!(*d >= c / 2 && *d <= c, "{d:?} within [{:?}, {c:?}]", c / 2);
    }
    // Success resets the backoff, and the registration is renewed on the new flow.
    let flow2 = open(&mut ua, now, Transport::Tcp, 40001);
    let out = drain(&mut ua);
    let register = out.iter().find_map(|o| match o {
        Output::Transmit { flow: f, bytes } if *f == flow2 => Message::parse(bytes.clone()).ok(),
        _ => None,
    });
    match register {
        Some(Message::Request(r)) => {
            assert_eq!(*r.method(), Method::Register);
            assert!(
                r.headers()
                    .get_by_name("Contact")
                    .unwrap()
                    .contains("40001")
            );
        }
        other => panic!("a REGISTER on the new flow, got {other:?}"),
    }
    ua.handle_input(now, Input::FlowClosed { flow: flow2 });
    let again = retry_in(&drain(&mut ua)).unwrap();
    assert!(again <= Duration::from_secs(2), "backoff reset: {again:?}");
}

#[test]
fn a_missing_pong_closes_the_flow_and_a_pong_keeps_it() {
    let t0 = start();
    let mut c = config();
    c.keepalive = Some(KeepAlive {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
    });
    let mut ua: UserAgent = UserAgent::new(c, t0, 4);
    ua.connect(t0);
    drain(&mut ua);
    let flow = open(&mut ua, t0, Transport::Tcp, 40000);
    drain(&mut ua);
    assert_eq!(ua.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    let ping_at = t0 + Duration::from_secs(30);
    ua.handle_timeout(ping_at);
    assert_eq!(
        drain(&mut ua),
        [Output::Transmit {
            flow,
            bytes: Bytes::from_static(b"\r\n\r\n")
        }]
    );
    // The pong arrives: nothing happens at the deadline, the next ping is 30 s later.
    ua.handle_input(
        ping_at + Duration::from_secs(1),
        Input::Received {
            flow,
            bytes: Bytes::from_static(b"\r\n"),
        },
    );
    ua.handle_timeout(ping_at + Duration::from_secs(10));
    assert!(drain(&mut ua).is_empty());
    assert!(ua.is_connected());
    // The next ping goes unanswered: the flow is closed and reconnecting starts.
    let next = ping_at + Duration::from_secs(30);
    ua.handle_timeout(next);
    drain(&mut ua);
    ua.handle_timeout(next + Duration::from_secs(10));
    let out = drain(&mut ua);
    assert!(out.contains(&Output::CloseFlow { flow }), "{out:?}");
    assert!(retry_in(&out).is_some());
    assert!(!ua.is_connected());
}
