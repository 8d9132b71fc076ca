/**
 * What a run says while it works: a progress bar on a TTY, plain periodic lines otherwise,
 * nothing with --no-progress; per-part telemetry as JSON lines with --log-json. With the
 * reader's summary (trackInput), it shows the share of the input bytes read and an ETA from it.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { onFile } from "../output/atomic.ts";
import type { PartTelemetry } from "./process.ts";
import type { ReadSummary } from "../fasta/reader.ts";

export class Progress {
  private readonly tty = !!process.stderr.isTTY;
  private t0 = performance.now();
  private parts = 0;
  private reads = 0;
  private frames = 0;
  private tokens = 0;
  private lastLine = 0;
  private drawn = false;
  /** every warning printed, in order (recorded in run.json) */
  readonly warnings: string[] = [];
  private input: { read: () => ReadSummary | undefined; totalBytes: number | null } | null = null;

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

  /**
   * Follow the reader: `read` returns its summary (bytes read so far per input); `inputs` are the
   * run's inputs with their sizes (-1 for a stream: then no percentage and no byte-based ETA).
   */
  trackInput(read: () => ReadSummary | undefined, inputs: { bytes: number }[]) {
    const known = inputs.every((i) => i.bytes >= 0);
    this.input = { read, totalBytes: known ? inputs.reduce((a, i) => a + i.bytes, 0) : null };
  }

  /** Share of the input bytes read so far (0..1), or null when unknown. */
  inputFraction(): number | null {
    const total = this.input?.totalBytes;
    const read = this.input?.read();
    if (!total || !read) return null;
    const bytes = read.inputs.reduce((a, i) => a + i.bytes, 0);
    return Math.min(1, bytes / total);
  }

  /** A stage before the parts start (e.g. loading the models). */
  stage(msg: string) {
    this.line(msg);
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
    const byBytes = this.inputFraction();
    const frac = exp ? Math.min(1, this.reads / exp) : byBytes;
    const eta = frac !== null && frac > 0 && secs > 0 ? Math.max(0, (secs * (1 - frac)) / frac) : undefined;
    const msg =
      (byBytes !== null ? `${(byBytes * 100).toFixed(byBytes < 0.1 ? 1 : 0)}% of input | ` : "") +
      `${this.parts} parts, ${fmt(this.reads)} reads, ${fmt(this.frames)} frames | ` +
      `${fmt(rate)} reads/s, ${fmt(tokRate)} tokens/s` +
      (eta !== undefined ? ` | ETA ${clock(eta)}` : "");
    if (this.tty) {
      const width = 24;
      const bar = frac !== null ? `[${"#".repeat(Math.round(frac * width)).padEnd(width, ".")}] ` : "";
      process.stderr.write(`\r\x1b[2K${bar}${msg}`);
      this.drawn = true;
    } else if (performance.now() - this.lastLine > 10_000 || this.parts === 1) {
      this.lastLine = performance.now();
      say(`virnuc: ${msg}`);
    }
  }

  warn(msg: string) {
    this.warnings.push(msg);
    this.clear();
    say(`virnuc: warning: ${msg}`);
  }

  /** Clears the bar, so that the stop message starts on a clean line. */
  interrupted() {
    this.clear();
  }

  line(msg: string) {
    if (!this.opts.enabled) return;
    this.clear();
    say(`virnuc: ${msg}`);
  }

  finish() {
    if (!this.opts.enabled) return;
    this.clear();
    const secs = (performance.now() - this.t0) / 1000;
    say(`virnuc: ${fmt(this.reads)} reads, ${fmt(this.frames)} frames in ${secs.toFixed(1)} s`);
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

/** A line on stderr, uncoloured (Bun's console.error paints a terminal's text red). */
function say(line: string) {
  process.stderr.write(line + "\n");
}
