// SIP.js 0.21.2 (Web.SimpleUser) in headless Chromium, driven over stdin/stdout JSON lines,
// for sansip's interop tests. See README.md for the protocol.
//
// node browser.mjs --ws ws://127.0.0.1:PORT/ --aor sip:carol@example.com --user carol \
//   --password carol-pw [--fake-audio FILE.wav] [--no-audio-processing] [--video] [--sip-trace] [--verbose]
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundlePath, bundleIsStale, buildBundle } from "./build.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 30000;
const COMMAND_TIMEOUT_MS = 20000;
const QUIT_TIMEOUT_MS = 7000; // the page's shutdown: up to 3 steps of 2 s

function usage(why) {
  process.stderr.write(
    `${why}\nusage: node browser.mjs --ws URL --aor SIP_URI --user NAME --password PW ` +
      `[--fake-audio FILE.wav] [--no-audio-processing] [--video] [--sip-trace] [--verbose] [--chromium PATH]\n`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { sipTrace: false, verbose: false, noAudioProcessing: false, video: false };
  const valued = {
    "--ws": "ws",
    "--aor": "aor",
    "--user": "user",
    "--password": "password",
    "--fake-audio": "fakeAudio",
    "--chromium": "chromium",
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a in valued) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      opts[valued[a]] = argv[++i];
    } else if (a === "--sip-trace") opts.sipTrace = true;
    else if (a === "--verbose") opts.verbose = true;
    else if (a === "--no-audio-processing") opts.noAudioProcessing = true;
    else if (a === "--video") opts.video = true;
    else usage(`unknown argument ${a}`);
  }
  for (const k of ["ws", "aor", "user", "password"]) if (!opts[k]) usage(`--${k} is required`);
  if (opts.fakeAudio && !existsSync(opts.fakeAudio.replace(/%noloop$/, "")))
    usage(`--fake-audio ${opts.fakeAudio}: no such file`);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const log = (s) => process.stderr.write(s.endsWith("\n") ? s : s + "\n");

function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

let browser;
let server;
let page;
let exiting = false;

async function exit(code) {
  if (exiting) return;
  exiting = true;
  // Whatever happens, be gone within QUIT_TIMEOUT_MS + 4 s (browser close and a margin).
  const hard = setTimeout(() => process.exit(code), QUIT_TIMEOUT_MS + 4000);
  hard.unref();
  try {
    if (page) await within(QUIT_TIMEOUT_MS, "page shutdown", page.evaluate(() => window.harness && window.harness.shutdown()));
  } catch (e) {
    log(`[harness] ${e.message}`);
  }
  try {
    if (browser) await within(3000, "browser close", browser.close());
  } catch (e) {
    log(`[harness] ${e.message}`);
  }
  if (server) server.close();
  process.exit(code);
}

async function main() {
  if (bundleIsStale()) {
    log("[harness] building dist/page.js");
    await buildBundle();
  }
  const bundle = readFileSync(bundlePath);
  const html =
    '<!doctype html><html><head><meta charset="utf-8"><title>sansip SIP.js harness</title></head>' +
    '<body><audio id="remote" autoplay></audio><video id="remoteVideo" autoplay muted playsinline></video>' +
    '<script src="/page.js"></script></body></html>';

  // A secure context for getUserMedia: http://127.0.0.1 counts as potentially trustworthy.
  server = createServer((req, res) => {
    if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(html);
    } else if (req.url === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(bundle);
    } else if (req.url === "/favicon.ico") {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;

  const args = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    // Nothing beyond 127.0.0.1: no DNS at all (Chromium still looks up Google's update and
    // account hosts despite Playwright's switches), and host candidates are never hidden
    // behind mDNS names (whose responder joins a multicast group on every interface).
    // chromium.sh merges this --disable-features into Playwright's own.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ];
  if (opts.fakeAudio) args.push(`--use-file-for-fake-audio-capture=${opts.fakeAudio}`);
  browser = await chromium.launch({
    executablePath: join(here, "chromium.sh"),
    env: { ...process.env, HARNESS_CHROMIUM: opts.chromium || process.env.HARNESS_CHROMIUM || "/usr/bin/chromium" },
    headless: true,
    args,
    timeout: START_TIMEOUT_MS,
    // Our own handlers hang up and unregister before closing the browser.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  browser.on("disconnected", () => {
    if (!exiting) {
      emit({ event: "error", message: "browser disconnected" });
      exit(1);
    }
  });
  const context = await browser.newContext();
  await context.grantPermissions(opts.video ? ["microphone", "camera"] : ["microphone"], { origin });
  page = await context.newPage();
  page.on("console", (m) => {
    const t = m.type();
    if (t === "error" || t === "warning" || opts.verbose) log(`[console.${t}] ${m.text()}`);
  });
  page.on("pageerror", (e) => log(`[pageerror] ${e.stack || e.message}`));
  page.on("crash", () => {
    emit({ event: "error", message: "page crashed" });
    exit(1);
  });
  await page.exposeFunction("__emit", (o) => emit(o));
  await page.exposeFunction("__log", (s) => log(s));
  await page.goto(`${origin}/`, { timeout: START_TIMEOUT_MS });
  await within(
    START_TIMEOUT_MS,
    "harness start",
    page.evaluate((cfg) => window.harness.start(cfg), {
      ws: opts.ws,
      aor: opts.aor,
      user: opts.user,
      password: opts.password,
      sipTrace: opts.sipTrace,
      verbose: opts.verbose,
      noAudioProcessing: opts.noAudioProcessing,
      video: opts.video,
    }),
  );
}

// Commands run one at a time, in order; "quit" jumps the queue.
let queue = Promise.resolve();

async function runCommand(c) {
  try {
    const result = await within(
      COMMAND_TIMEOUT_MS,
      c.cmd,
      page.evaluate((cmd) => window.harness.run(cmd), c),
    );
    emit(result || { event: "ok", cmd: c.cmd });
  } catch (e) {
    // page.evaluate wraps page exceptions as "page.evaluate: Error: ..."
    const message = String(e.message || e).replace(/^page\.evaluate: (Error: )?/, "").split("\n")[0];
    emit({ event: "error", cmd: c.cmd, message });
  }
}

function onLine(line) {
  if (!line.trim()) return;
  let c;
  try {
    c = JSON.parse(line);
  } catch {
    emit({ event: "error", message: `not JSON: ${line}` });
    return;
  }
  if (!c || typeof c.cmd !== "string") {
    emit({ event: "error", message: `no "cmd": ${line}` });
    return;
  }
  if (c.cmd === "quit") {
    exit(0);
    return;
  }
  queue = queue.then(() => runCommand(c));
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => exit(0));
process.stdout.on("error", () => exit(1)); // reader gone (EPIPE)

try {
  await main();
} catch (e) {
  emit({ event: "error", message: `start failed: ${String(e.message || e).replace(/^page\.\w+: (Error: )?/, "").split("\n")[0]}` });
  await exit(1);
}
const rl = createInterface({ input: process.stdin });
rl.on("line", onLine);
rl.on("close", () => queue.then(() => exit(0)));
