// Bundles page.js (which imports the npm sip.js package, shipped without a browser bundle)
// into dist/page.js, an IIFE for the harness page. `node build.mjs`, or imported by
// browser.mjs, which builds when dist/page.js is missing or older than its sources.
import { build } from "esbuild";
import { mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const bundlePath = join(here, "dist", "page.js");
const sources = [join(here, "page.js"), join(here, "package-lock.json")];

const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

export function bundleIsStale() {
  const built = mtime(bundlePath);
  return built < 0 || sources.some((s) => mtime(s) > built);
}

/** Builds dist/page.js; atomically, as several harnesses may start at once. */
export async function buildBundle() {
  const result = await build({
    entryPoints: [join(here, "page.js")],
    outfile: bundlePath,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2020",
    sourcemap: "inline",
    logLevel: "warning",
    write: false,
  });
  mkdirSync(dirname(bundlePath), { recursive: true });
  const tmp = `${bundlePath}.${process.pid}.tmp`;
  writeFileSync(tmp, result.outputFiles[0].contents);
  renameSync(tmp, bundlePath);
  return bundlePath;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildBundle();
  console.error(`built ${bundlePath}`);
}
