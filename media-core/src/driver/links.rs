//! Connection-oriented links: opening a TCP, TLS, WebSocket or secure WebSocket connection
//! for the driver, and
//! the two tasks that move its bytes (a reader feeding the driver, a writer fed by it).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::{FutureExt, StreamExt};
use futures_rustls::rustls::ClientConfig;
use sansip_core::transport::{FlowInfo, Transport};

use super::{Listener, Runtime, Stream, Target};
use crate::stats::StreamId;

/// What connection tasks tell the driver.
pub(crate) enum NetEvent {
    /// Connection `conn` is up (`accepted`: a peer opened it to our listener); send on
    /// `writer`.
    Connected {
        conn: u64,
        accepted: bool,
        info: FlowInfo,
        writer: mpsc::UnboundedSender<Bytes>,
    },
    /// Connecting to `server` failed or timed out.
    ConnectFailed { server: usize, reason: String },
    /// Bytes (a stream piece, or one WebSocket message) arrived on `conn`.
    Data { conn: u64, bytes: Bytes },
    /// `conn` is closed.
    Closed { conn: u64 },
    /// A media connection (TURN over TCP or TLS) is up from `local`; send on `writer`.
    StreamConnected {
        id: StreamId,
        local: SocketAddr,
        writer: mpsc::UnboundedSender<Bytes>,
    },
    /// Bytes arrived on a media connection.
    StreamData { id: StreamId, bytes: Bytes },
    /// A media connection is closed, or could not be opened.
    StreamClosed { id: StreamId },
}

/// How long a TCP connect plus a WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `target` and runs its reader until the connection ends.
pub(crate) async fn open(
    runtime: Arc<dyn Runtime>,
    tls: Option<Arc<ClientConfig>>,
    target: Target,
    server: usize,
    conn: u64,
    net: mpsc::UnboundedSender<NetEvent>,
) {
    let deadline = runtime.now() + CONNECT_TIMEOUT;
    let attempt = connect(runtime.clone(), tls, &target);
    let link = futures::select_biased! {
        r = attempt.fuse() => r,
        () = runtime.sleep_until(deadline).fuse() => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    match link {
        Ok(Link::Tcp(stream, local)) => {
            let info = FlowInfo {
                transport: target.transport,
                local,
                remote: target.addr,
            };
            run_tcp(runtime, stream, info, conn, false, net).await;
        }
        Ok(Link::Ws(ws, local)) => {
            let ws = *ws;
            let info = FlowInfo {
                transport: target.transport,
                local,
                remote: target.addr,
            };
            run_ws(runtime, ws, info, conn, false, net).await;
        }
        Err(e) => {
            tracing::debug!(error = %e, addr = %target.addr, "connect failed");
            let reason = e.to_string();
            let _ = net.unbounded_send(NetEvent::ConnectFailed { server, reason });
        }
    }
}

/// Opens a media connection to `server` (TURN over TCP or TLS: the TLS is the engine's)
/// and moves its bytes until it ends.
pub(crate) async fn open_stream(
    runtime: Arc<dyn Runtime>,
    id: StreamId,
    server: SocketAddr,
    net: mpsc::UnboundedSender<NetEvent>,
) {
    let deadline = runtime.now() + CONNECT_TIMEOUT;
    let attempt = runtime.connect_tcp(server);
    let connected = futures::select_biased! {
        r = attempt.fuse() => r,
        () = runtime.sleep_until(deadline).fuse() => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    let (stream, local) = match connected {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, %server, "media connection failed");
            let _ = net.unbounded_send(NetEvent::StreamClosed { id });
            return;
        }
    };
    let (writer, rx) = mpsc::unbounded();
    let _ = net.unbounded_send(NetEvent::StreamConnected { id, local, writer });
    pump(runtime, stream, rx, |bytes| {
        net.unbounded_send(NetEvent::StreamData { id, bytes })
            .is_ok()
    })
    .await;
    let _ = net.unbounded_send(NetEvent::StreamClosed { id });
}

/// Moves `stream`'s bytes: a task writes what `rx` brings (and closes the stream when the
/// sender is dropped), and this reads until the stream ends or `data` says stop.
async fn pump(
    runtime: Arc<dyn Runtime>,
    stream: Box<dyn Stream>,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    mut data: impl FnMut(Bytes) -> bool,
) {
    let (mut reader, mut writer) = stream.split();
    runtime.spawn(Box::pin(async move {
        while let Some(bytes) = rx.next().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        // The driver dropped the link (CloseFlow) or the write failed.
        let _ = writer.close().await;
    }));
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !data(Bytes::copy_from_slice(&buf[..n])) {
                    break;
                }
            }
        }
    }
}

enum Link {
    Tcp(Box<dyn Stream>, SocketAddr),
    // Boxed: the WebSocket state is large and lives only until its task takes it.
    Ws(
        Box<async_tungstenite::WebSocketStream<Box<dyn Stream>>>,
        SocketAddr,
    ),
}

async fn connect(
    runtime: Arc<dyn Runtime>,
    tls: Option<Arc<ClientConfig>>,
    target: &Target,
) -> io::Result<Link> {
    let (mut stream, local) = runtime.connect_tcp(target.addr).await?;
    if matches!(target.transport, Transport::Tls | Transport::Wss) {
        let config =
            tls.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no TLS configuration"))?;
        let host = target
            .host
            .clone()
            .unwrap_or_else(|| target.addr.ip().to_string());
        stream = super::tls::wrap(config, &host, stream).await?;
    }
    match target.transport {
        Transport::Tcp | Transport::Tls => Ok(Link::Tcp(stream, local)),
        Transport::Ws | Transport::Wss => {
            let url = target.url.as_deref().unwrap_or_default();
            let mut request = url
                .into_client_request()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            // RFC 7118 §4: the SIP WebSocket subprotocol.
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
            let (ws, _response) = async_tungstenite::client_async(request, stream)
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e))?;
            Ok(Link::Ws(Box::new(ws), local))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{other} is not a connection"),
        )),
    }
}

/// Tells the driver connection `conn` is up; returns what it will send on it.
fn announce(
    net: &mpsc::UnboundedSender<NetEvent>,
    conn: u64,
    accepted: bool,
    info: FlowInfo,
) -> mpsc::UnboundedReceiver<Bytes> {
    let (writer, rx) = mpsc::unbounded();
    let _ = net.unbounded_send(NetEvent::Connected {
        conn,
        accepted,
        info,
        writer,
    });
    rx
}

async fn run_tcp(
    runtime: Arc<dyn Runtime>,
    stream: Box<dyn Stream>,
    info: FlowInfo,
    conn: u64,
    accepted: bool,
    net: mpsc::UnboundedSender<NetEvent>,
) {
    let rx = announce(&net, conn, accepted, info);
    pump(runtime, stream, rx, |bytes| {
        net.unbounded_send(NetEvent::Data { conn, bytes }).is_ok()
    })
    .await;
    let _ = net.unbounded_send(NetEvent::Closed { conn });
}

async fn run_ws(
    runtime: Arc<dyn Runtime>,
    ws: async_tungstenite::WebSocketStream<Box<dyn Stream>>,
    info: FlowInfo,
    conn: u64,
    accepted: bool,
    net: mpsc::UnboundedSender<NetEvent>,
) {
    let (mut sink, mut stream) = ws.split();
    let mut rx = announce(&net, conn, accepted, info);
    runtime.spawn(Box::pin(async move {
        while let Some(bytes) = rx.next().await {
            // SIP over WebSocket is text in practice (RFC 7118 §5.1 allows both).
            let msg = match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Message::text(text),
                Err(e) => Message::binary(e.into_bytes()),
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close(None).await;
    }));
    while let Some(msg) = stream.next().await {
        let bytes = match msg {
            Ok(Message::Text(t)) => Bytes::copy_from_slice(t.as_bytes()),
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        if net.unbounded_send(NetEvent::Data { conn, bytes }).is_err() {
            break;
        }
    }
    let _ = net.unbounded_send(NetEvent::Closed { conn });
}

/// Accepts connections on `listener` for as long as the driver runs, each becoming a flow
/// of `transport` (TCP, or WebSocket after the upgrade).
pub(crate) async fn serve(
    runtime: Arc<dyn Runtime>,
    listener: Arc<dyn Listener>,
    transport: Transport,
    ids: Arc<AtomicU64>,
    net: mpsc::UnboundedSender<NetEvent>,
) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let accepted = std::future::poll_fn(|cx| listener.poll_accept(cx)).await;
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        if net.is_closed() {
            return;
        }
        let conn = ids.fetch_add(1, Ordering::Relaxed);
        let info = FlowInfo {
            transport,
            local,
            remote,
        };
        let (rt, net) = (runtime.clone(), net.clone());
        runtime.spawn(Box::pin(async move {
            match transport {
                Transport::Ws => match async_tungstenite::accept_hdr_async(stream, SipSubprotocol)
                    .await
                {
                    Ok(ws) => run_ws(rt, ws, info, conn, true, net).await,
                    Err(e) => tracing::debug!(error = %e, %remote, "websocket handshake failed"),
                },
                _ => run_tcp(rt, stream, info, conn, true, net).await,
            }
        }));
    }
}

/// Answers the WebSocket handshake with the `sip` subprotocol when the client asks for it
/// (RFC 7118 §4).
struct SipSubprotocol;

impl async_tungstenite::tungstenite::handshake::server::Callback for SipSubprotocol {
    fn on_request(
        self,
        request: &async_tungstenite::tungstenite::handshake::server::Request,
        mut response: async_tungstenite::tungstenite::handshake::server::Response,
    ) -> Result<
        async_tungstenite::tungstenite::handshake::server::Response,
        async_tungstenite::tungstenite::handshake::server::ErrorResponse,
    > {
        let asks_sip = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case("sip"));
        if asks_sip {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
        }
        Ok(response)
    }
}
