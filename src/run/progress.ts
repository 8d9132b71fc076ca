/**
 * What a run says while it works: a progress bar on a TTY, plain periodic lines otherwise,
 * nothing with --no-progress; per-part telemetry as JSON lines with --log-json.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { onFile } from "../output/atomic.ts";
import type { PartTelemetry } from "./process.ts";

export class Progress {
  private readonly tty = !!process.stderr.isTTY;
  private t0 = performance.now();
  private parts = 0;
  private reads = 0;
  private frames = 0;
  private tokens = 0;
  private lastLine = 0;
  private drawn = false;

  constructor(private readonly opts: { enabled: boolean; logJson?: string; expectedReads?: number }) {
    if (opts.logJson) onFile("write", opts.logJson, () => writeFileSync(opts.logJson!, ""));
  }

  start(resumedParts: number) {
    this.t0 = performance.now();
    if (resumedParts > 0) this.line(`resuming: ${resumedParts} finished part(s) kept`);
  }

  setExpectedReads(n: number) {
    this.opts.expectedReads = n;
  }

  part(t: PartTelemetry, worker?: string) {
    this.parts++;
    this.reads += t.reads;
    this.frames += t.frames;
    this.tokens += t.esm_tokens + t.dnabert_tokens;
    const log = this.opts.logJson;
    if (log) onFile("write", log, () => appendFileSync(log, JSON.stringify({ ...t, worker, time: new Date().toISOString() }) + "\n"));
    if (!this.opts.enabled) return;
    const secs = (performance.now() - this.t0) / 1000;
    const rate = this.reads / Math.max(secs, 1e-9);
    const tokRate = this.tokens / Math.max(secs, 1e-9);
    const exp = this.opts.expectedReads;
    const eta = exp && rate > 0 ? Math.max(0, (exp - this.reads) / rate) : undefined;
    const msg =
      `${this.parts} parts, ${fmt(this.reads)} reads, ${fmt(this.frames)} frames | ` +
      `${fmt(rate)} reads/s, ${fmt(tokRate)} tokens/s` +
      (eta !== undefined ? ` | ETA ${clock(eta)}` : "");
    if (this.tty) {
      const width = 24;
      const frac = exp ? Math.min(1, this.reads / exp) : 0;
      const bar = exp ? `[${"#".repeat(Math.round(frac * width)).padEnd(width, ".")}] ` : "";
      process.stderr.write(`\r\x1b[2K${bar}${msg}`);
      this.drawn = true;
    } else if (performance.now() - this.lastLine > 10_000 || this.parts === 1) {
      this.lastLine = performance.now();
      console.error(`virnuc: ${msg}`);
    }
  }

  warn(msg: string) {
    this.clear();
    console.error(`virnuc: warning: ${msg}`);
  }

  /** Clears the bar, so that the stop message starts on a clean line. */
  interrupted() {
    this.clear();
  }

  line(msg: string) {
    if (!this.opts.enabled) return;
    this.clear();
    console.error(`virnuc: ${msg}`);
  }

  finish() {
    if (!this.opts.enabled) return;
    this.clear();
    const secs = (performance.now() - this.t0) / 1000;
    console.error(`virnuc: ${fmt(this.reads)} reads, ${fmt(this.frames)} frames in ${secs.toFixed(1)} s`);
  }

  private clear() {
    if (this.drawn) {
      process.stderr.write("\r\x1b[2K");
      this.drawn = false;
    }
  }
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return `${Math.round(n)}`;
}

function clock(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(sec).padStart(2, "0")}s`;
}
