//! Connection-oriented links: opening a TCP, TLS, WebSocket or secure WebSocket connection
//! for the driver, and
//! the two tasks that move its bytes (a reader feeding the driver, a writer fed by it).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
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

use super::{Runtime, Stream, Target};

/// What connection tasks tell the driver.
pub(crate) enum NetEvent {
    /// Connection `conn` is up; send on `writer`.
    Connected {
        conn: u64,
        info: FlowInfo,
        writer: mpsc::UnboundedSender<Bytes>,
    },
    /// Connecting to `server` failed or timed out.
    ConnectFailed { server: usize, reason: String },
    /// Bytes (a stream piece, or one WebSocket message) arrived on `conn`.
    Data { conn: u64, bytes: Bytes },
    /// `conn` is closed.
    Closed { conn: u64 },
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
            run_tcp(runtime, stream, info, conn, net).await;
        }
        Ok(Link::Ws(ws, local)) => {
            let ws = *ws;
            let info = FlowInfo {
                transport: target.transport,
                local,
                remote: target.addr,
            };
            run_ws(runtime, ws, info, conn, net).await;
        }
        Err(e) => {
            tracing::debug!(error = %e, addr = %target.addr, "connect failed");
            let reason = e.to_string();
            let _ = net.unbounded_send(NetEvent::ConnectFailed { server, reason });
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

async fn run_tcp(
    runtime: Arc<dyn Runtime>,
    stream: Box<dyn Stream>,
    info: FlowInfo,
    conn: u64,
    net: mpsc::UnboundedSender<NetEvent>,
) {
    let (mut reader, mut writer) = stream.split();
    let (tx, mut rx) = mpsc::unbounded::<Bytes>();
    let _ = net.unbounded_send(NetEvent::Connected {
        conn,
        info,
        writer: tx,
    });
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
                let bytes = Bytes::copy_from_slice(&buf[..n]);
                if net.unbounded_send(NetEvent::Data { conn, bytes }).is_err() {
                    break;
                }
            }
        }
    }
    let _ = net.unbounded_send(NetEvent::Closed { conn });
}

async fn run_ws(
    runtime: Arc<dyn Runtime>,
    ws: async_tungstenite::WebSocketStream<Box<dyn Stream>>,
    info: FlowInfo,
    conn: u64,
    net: mpsc::UnboundedSender<NetEvent>,
) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded::<Bytes>();
    let _ = net.unbounded_send(NetEvent::Connected {
        conn,
        info,
        writer: tx,
    });
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
