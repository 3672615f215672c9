//! The async `Phone` on smol, in process, against the embedded registrar: the same driver
//! as on tokio, through the smol implementation of the runtime trait.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use sansip_smol::core::auth::DigestCredentials;
use sansip_smol::core::registrar::RegistrarConfig;
use sansip_smol::core::session::{EndCause, FakeSdp, Originator};
use sansip_smol::core::ua::{CallOptions, Event, UaConfig};
use sansip_smol::{Phone, PhoneConfig, RegistrarServer, SmolRuntime};

fn phone(server: &RegistrarServer, name: &str) -> Phone<FakeSdp> {
    let mut ua = UaConfig::new(format!("sip:{name}@example.com"));
    ua.credentials = Some(DigestCredentials::new(name, format!("{name}-pw")));
    sansip_smol::phone(PhoneConfig::new(ua, server.local_addr())).unwrap()
}

#[test]
fn a_call_on_smol() {
    smol::block_on(async {
        let mut config = RegistrarConfig::new("example.com");
        config.users = vec![
            ("alice".into(), "alice-pw".into()),
            ("bob".into(), "bob-pw".into()),
        ];
        let server = RegistrarServer::start(
            Arc::new(SmolRuntime),
            "127.0.0.1:0".parse().unwrap(),
            config,
            5,
        )
        .unwrap();
        let (alice, bob) = (phone(&server, "alice"), phone(&server, "bob"));
        alice.connect().await.unwrap();
        bob.connect().await.unwrap();
        assert_eq!(alice.register(300).await.unwrap(), 300);
        bob.register(300).await.unwrap();
        let call = alice.call("bob", CallOptions::default()).await.unwrap();
        let incoming = loop {
            if let Some(Event::IncomingCall { call, .. }) = bob.next_event().await {
                break call;
            }
        };
        let theirs = bob.call_handle(incoming).await.unwrap();
        theirs.answer().await.unwrap();
        call.answered().await.unwrap();
        assert!(call.hold().await.unwrap().local);
        call.hangup().await.unwrap();
        let end = theirs.ended().await.unwrap();
        assert_eq!(
            (end.cause, end.originator),
            (EndCause::Bye, Originator::Remote)
        );
    });
}

#[test]
fn a_phone_listening_on_tcp_takes_a_direct_call() {
    smol::block_on(async {
        // Bob listens for TCP; alice uses bob's listener as her "server" and calls him
        // directly, with no registrar in between.
        // Bob has no server of his own (the discard port stands in); he only listens.
        let mut bob_config = PhoneConfig::new(
            UaConfig::new("sip:bob@127.0.0.1"),
            "127.0.0.1:9".parse().unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        bob_config.listen_tcp = Some(format!("127.0.0.1:{port}").parse().unwrap());
        let bob: Phone<FakeSdp> = sansip_smol::phone(bob_config).unwrap();
        let target = sansip_smol::Target::tcp(format!("127.0.0.1:{port}").parse().unwrap());
        let alice: Phone<FakeSdp> = sansip_smol::phone(PhoneConfig::with_targets(
            UaConfig::new("sip:alice@127.0.0.1"),
            vec![target],
        ))
        .unwrap();
        alice.connect().await.unwrap();
        let call = alice
            .call(
                &format!("sip:bob@127.0.0.1:{port};transport=tcp"),
                CallOptions::default(),
            )
            .await
            .unwrap();
        let incoming = loop {
            if let Some(Event::IncomingCall { call, .. }) = bob.next_event().await {
                break call;
            }
        };
        let theirs = bob.call_handle(incoming).await.unwrap();
        theirs.answer().await.unwrap();
        call.answered().await.unwrap();
        theirs.hangup().await.unwrap();
        let end = call.ended().await.unwrap();
        assert_eq!(
            (end.cause, end.originator),
            (EndCause::Bye, Originator::Remote)
        );
    });
}
