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
        let call = alice
            .call("bob", CallOptions::default(), FakeSdp::new("alice"))
            .await
            .unwrap();
        let incoming = loop {
            if let Some(Event::IncomingCall { call, .. }) = bob.next_event().await {
                break call;
            }
        };
        let theirs = bob.call_handle(incoming).await.unwrap();
        theirs.answer(FakeSdp::new("bob")).await.unwrap();
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
