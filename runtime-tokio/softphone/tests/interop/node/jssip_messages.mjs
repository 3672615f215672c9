// JsSIP 3.13.8 in Node over WebSocket, for sansip's interop tests.
// Usage: node jssip_messages.mjs WS_URL USER PASSWORD PEER TEXT
// Registers USER, sends TEXT to PEER as a MESSAGE, then waits for one MESSAGE from PEER.
// Prints one JSON object per line; exits 0 when both happened within 30 s.
import WebSocket from "ws";
import JsSIP from "jssip";

globalThis.WebSocket = WebSocket;
JsSIP.debug.disable("JsSIP:*");

const [url, user, password, peer, text] = process.argv.slice(2);
const say = (o) => console.log(JSON.stringify(o));
const fail = (why) => {
  say({ event: "failed", why });
  process.exit(1);
};
setTimeout(() => fail("timeout"), 30000);

const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(url)],
  uri: `sip:${user}@example.com`,
  password,
  register: true,
  session_timers: false,
});
let sent = false;
let received = false;
const done = () => {
  if (sent && received) {
    ua.stop();
    setTimeout(() => process.exit(0), 200);
  }
};
ua.on("registrationFailed", (e) => fail(`registration: ${e.cause}`));
ua.on("registered", () => {
  say({ event: "registered" });
  ua.sendMessage(`sip:${peer}@example.com`, text, {
    eventHandlers: {
      succeeded: () => {
        say({ event: "sent" });
        sent = true;
        done();
      },
      failed: (e) => fail(`message: ${e.cause}`),
    },
  });
});
ua.on("newMessage", (e) => {
  if (e.originator !== "remote") return;
  const body = e.request.body;
  say({ event: "message", from: e.request.from.uri.user, body });
  if (e.request.from.uri.user === peer) {
    received = true;
    done();
  }
});
ua.start();
