//! RFC 3263 server location against a real DNS server (dnsmasq on 127.0.0.1 serving NAPTR,
//! SRV and A records). `#[ignore]`d in a plain `cargo test`; `.ci/run` installs
//! `dnsmasq-base` and runs it.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sansip_core::transport::Transport;
use sansip_media::driver::dns::resolve;

struct Dnsmasq(Child, SocketAddr);

/// `_sip._udp.many.test`: 30 SRV records with long target names, an answer too big for a
/// 512-byte UDP reply, so dnsmasq sets TC and the whole answer only comes over TCP.
const MANY: u16 = 30;

fn many_srv_records() -> Vec<String> {
    let mut args = Vec::new();
    for i in 0..MANY {
        let host = format!("server-number-{i:02}-with-a-rather-long-name.many.test");
        args.push(format!(
            "--srv-host=_sip._udp.many.test,{host},{},{i},5",
            6000 + i
        ));
        args.push(format!("--host-record={host},127.0.1.{}", i + 1));
    }
    args
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq() -> Dnsmasq {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let pid = std::env::temp_dir().join(format!("sansip-dnsmasq-{port}.pid"));
    let child = Command::new("dnsmasq")
        .args([
            // Not --no-daemon: in that debug mode dnsmasq serves a TCP connection inline
            // and answers nothing else until the client closes it.
            "--keep-in-foreground",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .args([
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--user=root",
        ])
        .arg(format!("--pid-file={}", pid.display()))
        // example.test: NAPTR prefers TCP, then UDP; each SRV points at proxy.example.test.
        .arg("--naptr-record=example.test,10,10,s,SIP+D2T,,_sip._tcp.example.test")
        .arg("--naptr-record=example.test,20,10,s,SIP+D2U,,_sip._udp.example.test")
        .arg("--srv-host=_sip._tcp.example.test,proxy.example.test,5070,0,5")
        .arg("--srv-host=_sip._udp.example.test,proxy.example.test,5071,0,5")
        // srvonly.test: no NAPTR, two UDP SRV records of different priority.
        .arg("--srv-host=_sip._udp.srvonly.test,b.srvonly.test,5081,20,5")
        .arg("--srv-host=_sip._udp.srvonly.test,a.srvonly.test,5080,10,5")
        .arg("--host-record=proxy.example.test,127.0.0.1")
        .arg("--host-record=a.srvonly.test,127.0.0.2")
        .arg("--host-record=b.srvonly.test,127.0.0.3")
        .arg("--host-record=plain.test,127.0.0.4")
        .args(many_srv_records())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq is installed (Debian package dnsmasq-base)");
    let d = Dnsmasq(child, addr);
    // Wait until it answers (up to 10 s).
    for _ in 0..100 {
        if resolve("sip:plain.test", Some(addr)).is_ok_and(|t| !t.is_empty()) {
            return d;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("dnsmasq did not answer on {addr}");
}

#[test]
#[ignore = "needs dnsmasq (run by .ci/run)"]
fn naptr_then_srv_then_addresses_as_rfc_3263_says() {
    let d = dnsmasq();
    let dns = Some(d.1);
    // NAPTR: TCP (order 10) before UDP (order 20), each through its SRV record.
    let t = resolve("sip:example.test", dns).unwrap();
    let got: Vec<(Transport, String)> = t
        .iter()
        .map(|t| (t.transport, t.addr.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (Transport::Tcp, "127.0.0.1:5070".to_string()),
            (Transport::Udp, "127.0.0.1:5071".to_string())
        ]
    );
    // A transport parameter skips NAPTR and asks SRV for that transport only.
    let t = resolve("sip:example.test;transport=udp", dns).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].addr.to_string(), "127.0.0.1:5071");
    // No NAPTR: SRV records in priority order.
    let t = resolve("sip:srvonly.test", dns).unwrap();
    let addrs: Vec<String> = t.iter().map(|t| t.addr.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.2:5080", "127.0.0.3:5081"]);
    // Neither: the domain's address on 5060 over UDP.
    let t = resolve("sip:plain.test", dns).unwrap();
    assert_eq!(
        (t[0].transport, t[0].addr.to_string()),
        (Transport::Udp, "127.0.0.4:5060".to_string())
    );
    // An explicit port skips SRV.
    let t = resolve("sip:proxy.example.test:5099", dns).unwrap();
    assert_eq!(t[0].addr.to_string(), "127.0.0.1:5099");
}

#[test]
#[ignore = "needs dnsmasq (run by .ci/run)"]
fn a_truncated_srv_answer_is_fetched_whole_over_tcp() {
    let d = dnsmasq();
    let t = resolve("sip:many.test", Some(d.1)).unwrap();
    assert_eq!(t.len(), usize::from(MANY), "{t:?}");
    // Priority order survives: record i has priority i.
    let ports: Vec<u16> = t.iter().map(|t| t.addr.port()).collect();
    assert_eq!(ports, (6000..6000 + MANY).collect::<Vec<_>>());
}

#[test]
#[ignore = "needs dnsmasq (run by .ci/run)"]
fn hosts_file_names_resolve_even_when_the_dns_server_does_not_know_them() {
    // dnsmasq runs with --no-hosts: `localhost` can only come from our own /etc/hosts.
    let d = dnsmasq();
    let t = resolve("sip:localhost", Some(d.1)).unwrap();
    assert!(t[0].addr.ip().is_loopback(), "{t:?}");
    assert_eq!((t[0].transport, t[0].addr.port()), (Transport::Udp, 5060));
    let t = resolve("sip:localhost:5080;transport=tcp", Some(d.1)).unwrap();
    assert!(t[0].addr.ip().is_loopback(), "{t:?}");
    assert_eq!((t[0].transport, t[0].addr.port()), (Transport::Tcp, 5080));
}

#[test]
#[ignore = "needs dnsmasq (run by .ci/run)"]
fn a_name_nobody_knows_finds_no_server() {
    let d = dnsmasq();
    let r = resolve("sip:nowhere.invalid", Some(d.1));
    // The driver's `locate` turns this into `PhoneError::Lookup { reason: "no server found" }`.
    assert!(r.as_ref().is_ok_and(|t| t.is_empty()), "{r:?}");
}
