// The page side of browser.mjs: SIP.js 0.21.2's Web.SimpleUser in Chromium.
// Bundled by build.mjs (esbuild) into dist/page.js, an IIFE loaded by the harness page.
// Talks to Node through two functions that browser.mjs exposes on window:
//   __emit(object)  -> one JSON line on the harness's stdout
//   __log(text)     -> one line on the harness's stderr
// and offers window.harness.start(config) and window.harness.run(command).
import * as SIP from "sip.js";

const { SimpleUser, defaultSessionDescriptionHandlerFactory } = SIP.Web;

const emit = (event) => window.__emit(event);
const log = (text) => window.__log(String(text));

let config;
let simpleUser;
let messageFroms = []; // From URIs of received MESSAGEs, oldest first.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` with `what` unless `promise` settles first. */
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------
// SDP: keep media on the loopback interface.
//
// Chromium gathers host candidates on every interface (the loopback one only because of
// --allow-loopback-in-peer-connection). The tests must send nothing beyond 127.0.0.1, so
// the SDP that leaves this page offers only UDP 127.0.0.1 candidates, with c= and the m=
// port pointing at that candidate (Chromium would put its default-route address there),
// and the remote SDP is stripped of every non-loopback candidate before Chromium sees it.

const isLoopback = (addr) => addr.startsWith("127.") || addr === "::1";

/** Splits an SDP into [session lines, [m-section lines]...]. */
function sections(sdp) {
  const lines = sdp.split("\r\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const out = [[]];
  for (const line of lines) {
    if (line.startsWith("m=")) out.push([]);
    out[out.length - 1].push(line);
  }
  return out;
}

const join = (secs) => secs.flat().join("\r\n") + "\r\n";

// a=candidate:foundation component transport priority address port typ type ...
const candidate = (line) => {
  const f = line.slice("a=candidate:".length).split(" ");
  return { component: f[1], transport: f[2].toLowerCase(), address: f[4], port: f[5] };
};

function loopbackLocal(sdp) {
  const secs = sections(sdp);
  for (let i = 1; i < secs.length; i++) {
    const sec = secs[i];
    const mParts = sec[0].split(" ");
    if (mParts[1] === "0") continue; // rejected or stopped m-line
    const cands = sec.filter((l) => l.startsWith("a=candidate:"));
    if (cands.length === 0) continue; // bundled m-line without its own candidates
    const keep = cands.filter((l) => {
      const c = candidate(l);
      return c.transport === "udp" && c.address.startsWith("127.");
    });
    if (keep.length === 0) {
      log(`[harness] no UDP 127.0.0.1 candidate in local m-section ${i}; SDP left as is`);
      continue;
    }
    const rtp = keep.map(candidate).find((c) => c.component === "1") || candidate(keep[0]);
    mParts[1] = rtp.port;
    secs[i] = sec
      .filter((l) => !l.startsWith("a=candidate:") || keep.includes(l))
      .map((l, j) => (j === 0 ? mParts.join(" ") : l.startsWith("c=") ? "c=IN IP4 127.0.0.1" : l));
  }
  // A session-level c= line (Chromium puts c= in each m-section, but be safe).
  secs[0] = secs[0].map((l) => (l.startsWith("c=") ? "c=IN IP4 127.0.0.1" : l));
  return join(secs);
}

function loopbackRemote(sdp) {
  const secs = sections(sdp);
  const dropped = [];
  for (let i = 1; i < secs.length; i++) {
    secs[i] = secs[i].filter((l) => {
      if (!l.startsWith("a=candidate:")) return true;
      if (isLoopback(candidate(l).address)) return true;
      dropped.push(l);
      return false;
    });
  }
  if (dropped.length) log(`[harness] dropped non-loopback remote candidates: ${dropped.join(" | ")}`);
  return join(secs);
}

/** The default factory, with the SDP in both directions kept on loopback. */
function loopbackSdhFactory() {
  const base = defaultSessionDescriptionHandlerFactory();
  return (session, options) => {
    const sdh = base(session, options);
    const getLocal = sdh.getLocalSessionDescription.bind(sdh);
    sdh.getLocalSessionDescription = () =>
      getLocal().then((d) => ({ type: d.type, sdp: loopbackLocal(d.sdp) }));
    const setDescription = sdh.setDescription.bind(sdh);
    sdh.setDescription = (sdp, opts, modifiers) =>
      setDescription(typeof sdp === "string" ? loopbackRemote(sdp) : sdp, opts, modifiers);
    return sdh;
  };
}

// ---------------------------------------------------------------------------------------
// SIP.js logging: warnings and errors to stderr; with --sip-trace every SIP message sent
// or received on the WebSocket as {"event":"sip","dir":"out"|"in","message":...}.

function logConnector(level, category, label, content) {
  if (config.sipTrace && category === "sip.Transport") {
    const out = "Sending WebSocket message:\n\n";
    const inb = "Received WebSocket text message:\n\n";
    if (content.startsWith(out)) {
      emit({ event: "sip", dir: "out", message: content.slice(out.length, -1) });
      return;
    }
    if (content.startsWith(inb)) {
      emit({ event: "sip", dir: "in", message: content.slice(inb.length, -1) });
      return;
    }
  }
  if (level === "error" || level === "warn" || config.verbose) {
    log(`[sip.js ${level}] ${category}${label ? " " + label : ""}: ${content}`);
  }
}

// ---------------------------------------------------------------------------------------

function session() {
  const s = simpleUser && simpleUser.session;
  if (!s) throw new Error("no call");
  return s;
}

function peerConnection() {
  const sdh = session().sessionDescriptionHandler;
  const pc = sdh && sdh.peerConnection;
  if (!pc) throw new Error("no peer connection (call not set up yet?)");
  return pc;
}

function direction(sdp) {
  const m = /a=(sendrecv|sendonly|recvonly|inactive)/.exec(sdp || "");
  return m ? m[1] : "sendrecv";
}

async function start(cfg) {
  config = cfg;
  const remoteAudio = document.getElementById("remote");
  const remoteVideo = document.getElementById("remoteVideo");
  simpleUser = new SimpleUser(cfg.ws, {
    aor: cfg.aor,
    media: {
      // --no-audio-processing: the fake capture reaches the wire untouched (no echo
      // cancellation, gain control or noise suppression, which fades a steady tone).
      constraints: {
        audio: cfg.noAudioProcessing
          ? { echoCancellation: false, autoGainControl: false, noiseSuppression: false }
          : true,
        // --video: Chromium's fake camera (--use-fake-device-for-media-stream).
        video: !!cfg.video,
      },
      remote: cfg.video ? { audio: remoteAudio, video: remoteVideo } : { audio: remoteAudio },
    },
    // A tone string is played on the RTP stream (RTCDTMFSender, RFC 4733), not as INFO.
    sendDTMFUsingSessionDescriptionHandler: true,
    reconnectionAttempts: 0,
    userAgentOptions: {
      authorizationUsername: cfg.user,
      authorizationPassword: cfg.password,
      displayName: cfg.user,
      logBuiltinEnabled: false,
      logLevel: cfg.sipTrace || cfg.verbose ? "log" : "warn",
      logConnector,
      sessionDescriptionHandlerFactory: loopbackSdhFactory(),
      sessionDescriptionHandlerFactoryOptions: {
        iceGatheringTimeout: 500,
        peerConnectionConfiguration: { iceServers: [] },
      },
    },
    delegate: {
      onCallCreated: () => {
        const s = simpleUser.session;
        s.delegate = s.delegate || {};
        // A re-INVITE from the peer (e.g. it holds us): which direction it offered.
        s.delegate.onInvite = (request, _response, statusCode) =>
          emit({ event: "reinvite", direction: direction(request.body), status: statusCode });
      },
      onCallReceived: () => {
        const s = simpleUser.session;
        emit({
          event: "incoming",
          from: s ? s.remoteIdentity.uri.toString() : null,
          display_name: s ? s.remoteIdentity.displayName || null : null,
        });
      },
      onCallAnswered: () => emit({ event: "answered" }),
      onCallHangup: () => emit({ event: "ended" }),
      onCallHold: (held) => emit({ event: "hold", held }),
      onCallDTMFReceived: (tone, duration) => emit({ event: "dtmf", tone, duration }),
      onMessageReceived: (body) => emit({ event: "message", from: messageFroms.shift() || null, body }),
      onRegistered: () => emit({ event: "registered" }),
      onUnregistered: () => emit({ event: "unregistered" }),
      onServerDisconnect: (error) =>
        emit({ event: "disconnected", message: error ? String(error.message || error) : null }),
    },
  });
  // Remember who sent each MESSAGE (SimpleUser's delegate only gets the body).
  const uaDelegate = simpleUser.sessionManager.userAgent.delegate;
  const onMessage = uaDelegate.onMessage;
  uaDelegate.onMessage = (message) => {
    messageFroms.push(message.request.from.uri.toString());
    onMessage(message);
  };
  await within(10000, "WebSocket connect", simpleUser.connect());
  emit({ event: "ready" });
}

/** Waits for the next REGISTER outcome. */
async function register() {
  let settle;
  const outcome = new Promise((resolve, reject) => (settle = { resolve, reject }));
  const requestDelegate = {
    onAccept: () => settle.resolve(),
    onReject: (response) => {
      const m = response.message;
      // A 401/407 challenge is answered by SIP.js itself; only a final failure lands here.
      settle.reject(new Error(`REGISTER rejected: ${m.statusCode} ${m.reasonPhrase}`));
    },
  };
  await simpleUser.register({ requestDelegate });
  await within(10000, "REGISTER outcome", outcome);
}

async function call(target) {
  const inviterInviteOptions = {
    requestDelegate: {
      onProgress: (response) =>
        emit({ event: "progress", status: response.message.statusCode }),
      onReject: (response) =>
        emit({
          event: "rejected",
          status: response.message.statusCode,
          reason: response.message.reasonPhrase,
        }),
    },
  };
  await within(15000, "INVITE", simpleUser.call(target, undefined, inviterInviteOptions));
}

/** RFC 4733 through RTCDTMFSender; resolves when the tone buffer has been played. */
async function dtmf(tones, duration = 100, gap = 70) {
  const pc = peerConnection();
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "audio" && s.dtmf);
  if (!sender) throw new Error("no audio sender with an RTCDTMFSender");
  if (!sender.dtmf.canInsertDTMF) throw new Error("canInsertDTMF is false (no telephone-event negotiated?)");
  const sdh = session().sessionDescriptionHandler;
  if (!sdh.sendDtmf(tones, { duration, interToneGap: gap })) throw new Error("sendDtmf failed");
  const deadline = Date.now() + tones.length * (duration + gap + 100) + 2000;
  while (sender.dtmf.toneBuffer !== "" && Date.now() < deadline) await sleep(20);
  if (sender.dtmf.toneBuffer !== "") throw new Error(`DTMF not played: ${sender.dtmf.toneBuffer}`);
  await sleep(duration + gap); // the last tone's end packets
}

/** SIP INFO application/dtmf-relay, as SimpleUser sends DTMF by default. */
async function infoDtmf(tone, duration = 160) {
  const s = session();
  let settle;
  const outcome = new Promise((resolve, reject) => (settle = { resolve, reject }));
  await s.info({
    requestDelegate: {
      onAccept: () => settle.resolve(),
      onReject: (r) => settle.reject(new Error(`INFO rejected: ${r.message.statusCode}`)),
    },
    requestOptions: {
      body: {
        contentDisposition: "render",
        contentType: "application/dtmf-relay",
        content: `Signal=${tone}\r\nDuration=${duration}`,
      },
    },
  });
  await within(10000, "INFO response", outcome);
}

/**
 * Transfers the call to `target` (Session.refer, RFC 3515) and resolves on the 202. Each
 * NOTIFY of the transferee is reported; on a 2xx sipfrag the call is ended with BYE, as
 * the transferor does (RFC 5589 §6).
 */
async function refer(target) {
  const s = session();
  const uri = SIP.UserAgent.makeURI(target);
  if (!uri) throw new Error(`bad target ${target}`);
  let settle;
  const outcome = new Promise((resolve, reject) => (settle = { resolve, reject }));
  await s.refer(uri, {
    requestDelegate: {
      onAccept: (r) => {
        emit({ event: "refer_accepted", status: r.message.statusCode });
        settle.resolve();
      },
      onReject: (r) => settle.reject(new Error(`REFER rejected: ${r.message.statusCode}`)),
    },
    onNotify: (notification) => {
      notification.accept();
      const m = /^SIP\/2\.0 (\d{3})/.exec(notification.request.body || "");
      const status = m ? Number(m[1]) : null;
      emit({
        event: "refer_notify",
        status,
        state: notification.request.getHeader("Subscription-State") || null,
      });
      if (status >= 200 && status < 300 && s.state === SIP.SessionState.Established) {
        s.bye().catch((e) => log(`[harness] bye after transfer: ${e.message}`));
      }
    },
  });
  await within(10000, "REFER response", outcome);
}

async function message(target, body) {
  const uri = SIP.UserAgent.makeURI(target);
  if (!uri) throw new Error(`bad target ${target}`);
  const ua = simpleUser.sessionManager.userAgent;
  let settle;
  const outcome = new Promise((resolve, reject) => (settle = { resolve, reject }));
  await new SIP.Messager(ua, uri, body).message({
    requestDelegate: {
      onAccept: () => settle.resolve(),
      onReject: (r) => settle.reject(new Error(`MESSAGE rejected: ${r.message.statusCode}`)),
    },
  });
  await within(10000, "MESSAGE response", outcome);
}

async function stats() {
  const pc = peerConnection();
  const report = await pc.getStats();
  const out = {
    event: "stats",
    inbound_packets: 0,
    inbound_bytes: 0,
    outbound_packets: 0,
    outbound_bytes: 0,
    audio_level: null,
    codec: null,
    packets_lost: 0,
    jitter: null,
    ice_state: pc.iceConnectionState,
    connection_state: pc.connectionState,
    directions: pc.getTransceivers().map((t) => t.currentDirection),
    video_frames_decoded: 0,
    video_key_frames_decoded: 0,
    video_frames_sent: 0,
    video_plis_sent: 0,
    video_plis_received: 0,
    video_codec: null,
  };
  const codecs = {};
  report.forEach((r) => {
    if (r.type === "codec") codecs[r.id] = r;
  });
  report.forEach((r) => {
    if (r.kind !== "video") return;
    if (r.type === "inbound-rtp") {
      out.video_frames_decoded += r.framesDecoded || 0;
      out.video_key_frames_decoded += r.keyFramesDecoded || 0;
      out.video_plis_sent += r.pliCount || 0;
      if (r.codecId && codecs[r.codecId]) out.video_codec = codecs[r.codecId].mimeType;
    } else if (r.type === "outbound-rtp") {
      out.video_frames_sent += r.framesSent || 0;
      out.video_plis_received += r.pliCount || 0;
    }
  });
  report.forEach((r) => {
    if (r.kind !== "audio" && r.mediaType !== "audio") return;
    if (r.type === "inbound-rtp") {
      out.inbound_packets += r.packetsReceived || 0;
      out.inbound_bytes += r.bytesReceived || 0;
      out.packets_lost += r.packetsLost || 0;
      if (r.audioLevel !== undefined) out.audio_level = r.audioLevel;
      if (r.jitter !== undefined) out.jitter = r.jitter;
      if (r.codecId && codecs[r.codecId]) out.codec = codecs[r.codecId].mimeType;
    } else if (r.type === "outbound-rtp") {
      out.outbound_packets += r.packetsSent || 0;
      out.outbound_bytes += r.bytesSent || 0;
      if (!out.codec && r.codecId && codecs[r.codecId]) out.codec = codecs[r.codecId].mimeType;
    }
  });
  return out;
}

/**
 * How loud each of `freqs` (Hz) is in what the call plays, in dB (WebAudio's analyser over
 * the remote stream, averaged over `ms`): a test's Goertzel for what the browser hears.
 */
async function tones(freqs, ms) {
  const stream = session().sessionDescriptionHandler.remoteMediaStream;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const hzPerBin = ctx.sampleRate / analyser.fftSize;
  const sums = freqs.map(() => 0);
  let rounds = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    analyser.getFloatFrequencyData(bins);
    freqs.forEach((f, i) => {
      // The strongest bin within two of the tone's (the analyser's window spreads it).
      const k = Math.round(f / hzPerBin);
      let level = -200;
      for (let j = Math.max(0, k - 2); j <= Math.min(bins.length - 1, k + 2); j++) {
        if (Number.isFinite(bins[j])) level = Math.max(level, bins[j]);
      }
      sums[i] += level;
    });
    rounds += 1;
  }
  await ctx.close();
  const levels = {};
  freqs.forEach((f, i) => (levels[String(f)] = rounds ? sums[i] / rounds : null));
  return { event: "tones", levels };
}

/** Runs one command; returns an event to print (or null for a plain {"event":"ok"}). */
async function run(c) {
  if (!simpleUser) throw new Error("not started");
  switch (c.cmd) {
    case "register":
      await register();
      return null;
    case "unregister": {
      const { outcome, requestDelegate } = finalResponse();
      await within(10000, "unregister", simpleUser.unregister({ requestDelegate }));
      await within(10000, "unregister response", outcome);
      return null;
    }
    case "call":
      if (!c.target) throw new Error("call needs a target");
      await call(c.target);
      return null;
    case "answer":
      await within(15000, "answer", simpleUser.answer());
      return null;
    case "decline":
      await within(10000, "decline", simpleUser.decline());
      return null;
    case "hangup":
      await within(10000, "hangup", simpleUser.hangup());
      return null;
    case "hold":
      await within(15000, "hold", simpleUser.hold());
      return null;
    case "unhold":
      await within(15000, "unhold", simpleUser.unhold());
      return null;
    case "dtmf":
      if (!/^[0-9A-D#*,]+$/.test(c.tones || "")) throw new Error(`bad tones ${c.tones}`);
      await dtmf(c.tones, c.duration, c.gap);
      return null;
    case "info_dtmf":
      if (!/^[0-9A-D#*]$/.test(c.tone || "")) throw new Error(`bad tone ${c.tone}`);
      await infoDtmf(c.tone, c.duration);
      return null;
    case "refer":
      if (!c.target) throw new Error("refer needs a target");
      await refer(c.target);
      return null;
    case "message":
      if (!c.target) throw new Error("message needs a target");
      await message(c.target, String(c.body ?? ""));
      return null;
    case "stats":
      return await stats();
    case "tones":
      if (!Array.isArray(c.freqs)) throw new Error("tones needs freqs");
      return await tones(c.freqs.map(Number), Number(c.ms) || 1000);
    case "sdp": {
      // The peer connection's current local and remote descriptions (debugging aid).
      const pc = peerConnection();
      return {
        event: "sdp",
        local: pc.localDescription && pc.localDescription.sdp,
        remote: pc.remoteDescription && pc.remoteDescription.sdp,
      };
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
  }
}

/** Resolves when a request sent with the returned delegate gets a final response. */
function finalResponse() {
  let done;
  const outcome = new Promise((resolve) => (done = resolve));
  return { outcome, requestDelegate: { onAccept: () => done(), onReject: () => done() } };
}

/**
 * Best effort, bounded: end the call, unregister and close the WebSocket, each waiting
 * for its final response (closing at once would leave Kamailio answering a gone socket).
 */
async function shutdown() {
  if (!simpleUser) return;
  const step = async (what, f) => {
    try {
      await within(2000, what, f());
    } catch (e) {
      log(`[harness] shutdown ${what}: ${e.message}`);
    }
  };
  const s = simpleUser.session;
  if (s) {
    await step("hangup", async () => {
      if (s.state === SIP.SessionState.Established) {
        const { outcome, requestDelegate } = finalResponse();
        await s.bye({ requestDelegate });
        await outcome;
      } else {
        await simpleUser.hangup();
      }
    });
  }
  const registerer = simpleUser.sessionManager.registerer;
  if (registerer && registerer.state === SIP.RegistererState.Registered) {
    await step("unregister", async () => {
      const { outcome, requestDelegate } = finalResponse();
      await simpleUser.unregister({ requestDelegate });
      await outcome;
    });
  }
  await step("disconnect", () => simpleUser.disconnect());
}

window.SIP = SIP;
window.harness = { start, run, shutdown };
