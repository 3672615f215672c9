//! Transaction layer: no input sequence panics the layer, a due timer never survives
//! `handle_timeout`, and every transaction ends. Once the transaction user (this harness) has
//! given every server transaction a final response and the peer has answered every INVITE
//! client transaction left in Proceeding (which RFC 3261 §17.1.1.2 leaves to the TU: CANCEL,
//! then the peer's 487), ten minutes of timers (B, D, F, H, I, J, K, L, M are all at most
//! 64·T1 = 32 s) leave the layer empty.
//!
//! Input: pieces separated by `\0`. A piece whose first byte is below 0x80 is a datagram on
//! the UDP flow, answered with 200 if it starts a transaction. Otherwise the first byte `c` is
//! a command, bit 0 picking the flow (UDP/TCP) and bits 1-3 the operation, on argument bytes
//! `a0 a1 …`: 0 advance `a0`×20 ms then a datagram (the rest) answered with code `a1`;
//! 1 `send_request` (method `a0`, branch `z9hG4bK<a1>`, CSeq `a2`); 2 advance `a0 a1` ms (LE);
//! 3 close the flow; 4 answer the oldest open server transaction with code `a0`; 5 the peer
//! answers client transaction `a0` with code `a1`; 6, 7 advance `a0`×100 ms. Codes are picked
//! from `CODES`.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sansip_core::message::{HeaderName, Message, Method, Request, Response, StatusCode};
use sansip_core::transaction::{
    RequestOutcome, TimerConfig, TransactionLayer, TxId, TxKind, TxState,
};
use sansip_core::transport::{Flow, FlowId, Transport};

const UDP: Flow = Flow {
    id: FlowId(1),
    transport: Transport::Udp,
};
const TCP: Flow = Flow {
    id: FlowId(2),
    transport: Transport::Tcp,
};
const CODES: [u16; 16] = [
    100, 180, 183, 200, 202, 299, 300, 302, 400, 404, 408, 481, 486, 487, 503, 699,
];

fn code(b: u8) -> u16 {
    CODES[usize::from(b) % CODES.len()]
}

struct Driver {
    layer: TransactionLayer,
    now: Instant,
    /// Client transactions started here.
    clients: Vec<TxId>,
    /// Every transaction seen, for the failure message.
    seen: Vec<TxId>,
}

impl Driver {
    fn drain(&mut self) {
        while self.layer.poll_output().is_some() {}
    }

    /// Moves the clock forward, firing each timer at its deadline.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..10_000 {
            match self.layer.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.layer.handle_timeout(self.now);
                    self.drain();
                    let next = self.layer.poll_timeout();
                    assert!(
                        next.is_none_or(|t| t > self.now),
                        "due timer survived: {next:?}"
                    );
                }
                _ => break,
            }
        }
        self.now = until;
        self.layer.handle_timeout(self.now);
        self.drain();
    }

    /// Server transactions that have not sent a final response yet.
    fn owed(&self) -> Vec<TxId> {
        let server = |t| self.layer.kind(t).is_some_and(|k| !k.is_client());
        let open = |t| {
            matches!(
                self.layer.state(t),
                Some(TxState::Trying | TxState::Proceeding)
            )
        };
        self.seen
            .iter()
            .copied()
            .filter(|&t| server(t) && open(t))
            .collect()
    }

    /// The transaction user answers server transaction `tx`.
    fn respond(&mut self, tx: TxId, code: u16) {
        if let Some(req) = self.layer.request(tx) {
            let resp = Response::from_request(req, StatusCode::new(code));
            let _ = self.layer.respond(self.now, tx, &resp);
            self.drain();
        }
    }

    fn datagram(&mut self, flow: Flow, code: u16, bytes: &[u8]) {
        match Message::parse(Bytes::copy_from_slice(bytes)) {
            Ok(Message::Request(req)) => match self.layer.handle_request(self.now, flow, req) {
                Ok(RequestOutcome::New(tx)) => {
                    self.seen.push(tx);
                    self.drain();
                    self.respond(tx, code);
                }
                Ok(RequestOutcome::Cancel { tx, invite }) => {
                    self.seen.push(tx);
                    self.drain();
                    self.respond(tx, code);
                    if let Some(invite) = invite {
                        self.respond(invite, 487);
                    }
                }
                Ok(RequestOutcome::Ack | RequestOutcome::Absorbed) | Err(_) => {}
            },
            Ok(Message::Response(resp)) => {
                let _ = self.layer.handle_response(self.now, &resp);
            }
            Err(_) => {}
        }
        self.drain();
    }

    /// Starts a client transaction: method from `m`, branch `z9hG4bK<branch>`.
    fn send(&mut self, flow: Flow, m: u8, branch: u8, seq: u8) {
        let method = match m % 8 {
            0 => Method::Invite,
            1 => Method::Options,
            2 => Method::Register,
            3 => Method::Bye,
            4 => Method::Cancel,
            5 => Method::Ack,
            6 => Method::Message,
            _ => {
                // CANCEL for the latest INVITE client transaction, built by the layer.
                let cancel = self
                    .clients
                    .iter()
                    .rev()
                    .find_map(|&t| self.layer.cancel_request(t));
                if let Some(req) = cancel {
                    self.start(flow, req);
                }
                return;
            }
        };
        let mut req = Request::new(method.clone(), "sip:bob@example.com");
        let h = req.headers_mut();
        let via = format!(
            "SIP/2.0/{} 192.0.2.1;branch=z9hG4bK{branch}",
            flow.transport
        );
        h.push(HeaderName::Via, &via);
        h.push(HeaderName::From, "<sip:alice@example.com>;tag=fz");
        h.push(HeaderName::To, "<sip:bob@example.com>");
        h.push(HeaderName::CallId, "fuzz@192.0.2.1");
        h.push(HeaderName::CSeq, &format!("{seq} {}", method.as_str()));
        self.start(flow, req);
    }

    fn start(&mut self, flow: Flow, req: Request) {
        if let Ok(tx) = self.layer.send_request(self.now, flow, req) {
            self.clients.push(tx);
            self.seen.push(tx);
        }
        self.drain();
    }

    /// The peer answers one of our client transactions.
    fn peer_answers(&mut self, tx: TxId, code: u16) {
        // A client transaction keeps only the bytes it sent: the peer reads them.
        let sent = self.layer.request_bytes(tx).cloned();
        if let Some(Ok(Message::Request(req))) = sent.map(Message::parse) {
            let resp = Response::from_request(&req, StatusCode::new(code));
            let _ = self.layer.handle_response(self.now, &resp);
            self.drain();
        }
    }

    fn run(&mut self, piece: &[u8]) {
        let Some((&c, args)) = piece.split_first() else {
            return;
        };
        if c < 0x80 {
            return self.datagram(UDP, 200, piece);
        }
        let flow = if c & 1 == 0 { UDP } else { TCP };
        let arg = |i: usize| args.get(i).copied().unwrap_or(0);
        match (c >> 1) & 7 {
            // advance ×20 ms, response code, datagram
            0 => {
                self.advance(Duration::from_millis(u64::from(arg(0)) * 20));
                self.datagram(flow, code(arg(1)), args.get(2..).unwrap_or_default());
            }
            1 => self.send(flow, arg(0), arg(1), arg(2)),
            2 => self.advance(Duration::from_millis(
                u16::from_le_bytes([arg(0), arg(1)]).into(),
            )),
            3 => {
                self.layer.handle_flow_closed(flow);
                self.drain();
            }
            4 => {
                if let Some(&tx) = self.owed().first() {
                    self.respond(tx, code(arg(0)));
                }
            }
            5 => {
                if !self.clients.is_empty() {
                    let tx = self.clients[usize::from(arg(0)) % self.clients.len()];
                    self.peer_answers(tx, code(arg(1)));
                }
            }
            _ => self.advance(Duration::from_millis(u64::from(arg(0)) * 100)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut d = Driver {
        layer: TransactionLayer::new(TimerConfig::default()),
        now: Instant::now(),
        clients: Vec::new(),
        seen: Vec::new(),
    };
    for piece in data.split(|&b| b == 0) {
        d.run(piece);
    }

    // The TU owes every server transaction a final response...
    for tx in d.owed() {
        d.respond(tx, 500);
    }
    // ...and the peer ends every INVITE still proceeding (after our CANCEL) with a 487.
    for tx in d.clients.clone() {
        if d.layer.kind(tx) == Some(TxKind::InviteClient)
            && d.layer.state(tx) == Some(TxState::Proceeding)
        {
            d.peer_answers(tx, 487);
        }
    }
    d.advance(Duration::from_secs(600));
    let left: Vec<_> = d
        .seen
        .iter()
        .filter_map(|&t| Some((t, d.layer.kind(t)?, d.layer.state(t)?)))
        .collect();
    assert!(
        d.layer.is_empty(),
        "{} transactions outlived 10 minutes: {left:?}, next timer {:?}",
        d.layer.len(),
        d.layer.next_timer()
    );
});
