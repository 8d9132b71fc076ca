/**
 * Progress for long transfers and hashes: a redrawn bar (bytes, rate, ETA) on a terminal,
 * plain lines otherwise (logs of cluster jobs must stay readable).
 */

export interface ProgressBar {
  /** `done` is the absolute byte count, including bytes present before this run (a resume). */
  update(done: number): void;
  finish(note?: string): void;
  fail(note: string): void;
}

export interface ProgressSink {
  /** `total` may be unknown; `already` bytes were present before (they do not count toward the rate). */
  start(label: string, total: number | undefined, already?: number): ProgressBar;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Nothing at all (tests, --no-progress). */
export const silentProgress: ProgressSink = {
  start: () => ({ update() {}, finish() {}, fail() {} }),
};

interface Writer {
  write(s: string): unknown;
}

const REDRAW_MS = 100;
const PLAIN_EVERY_MS = 30_000;
const PLAIN_START_BYTES = 64 << 20;

/** Rate over the bytes moved in this run, smoothed over a sliding window of recent samples. */
class RateMeter {
  private samples: Array<[number, number]> = [];
  constructor(private readonly windowMs = 5000) {}
  add(t: number, bytes: number): void {
    this.samples.push([t, bytes]);
    while (this.samples.length > 2 && t - this.samples[0][0] > this.windowMs) this.samples.shift();
  }
  rate(): number {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}

export function terminalProgress(out: Writer & { columns?: number }, now: () => number = Date.now): ProgressSink {
  return {
    start(label, total, already = 0) {
      const t0 = now();
      const meter = new RateMeter();
      meter.add(t0, already);
      let last = 0;
      let done = already;
      const draw = (final: boolean, note = "") => {
        const width = Math.max(40, Math.min(out.columns ?? 100, 160));
        const rate = meter.rate();
        const pct = total ? Math.min(100, (done / total) * 100) : undefined;
        const sizes = total ? `${formatBytes(done)}/${formatBytes(total)}` : formatBytes(done);
        const eta = final ? `in ${formatDuration((now() - t0) / 1000)}` : total && rate > 0 ? `ETA ${formatDuration((total - done) / rate)}` : "ETA --:--";
        const tail = ` ${pct === undefined ? "" : `${pct.toFixed(0).padStart(3)}% `}${sizes} ${formatBytes(Math.round(rate))}/s ${eta}${note ? ` ${note}` : ""}`;
        const name = label.length > 40 ? "…" + label.slice(-39) : label;
        const barWidth = Math.max(10, width - name.length - tail.length - 4);
        const filled = pct === undefined ? 0 : Math.round((pct / 100) * barWidth);
        const bar = "█".repeat(filled) + "░".repeat(barWidth - filled);
        out.write(`\r\x1b[2K${name} ${bar}${tail}${final ? "\n" : ""}`);
      };
      return {
        update(n) {
          done = n;
          const t = now();
          meter.add(t, n);
          if (t - last >= REDRAW_MS) {
            last = t;
            draw(false);
          }
        },
        finish(note) {
          draw(true, note ?? "");
        },
        fail(note) {
          draw(true, note);
        },
      };
    },
  };
}

export function plainProgress(out: Writer, now: () => number = Date.now): ProgressSink {
  return {
    start(label, total, already = 0) {
      const t0 = now();
      let last = t0;
      let done = already;
      const resumed = already > 0 ? ` (resuming at ${formatBytes(already)})` : "";
      // Small files get only their "done" line.
      if (total === undefined || total >= PLAIN_START_BYTES || already > 0)
        out.write(`${label}: ${total === undefined ? "size unknown" : formatBytes(total)}${resumed}\n`);
      const rate = () => ((done - already) * 1000) / Math.max(1, now() - t0);
      return {
        update(n) {
          done = n;
          const t = now();
          if (t - last >= PLAIN_EVERY_MS) {
            last = t;
            const pct = total ? ` ${((n / total) * 100).toFixed(0)}%` : "";
            const eta = total && rate() > 0 ? `, ETA ${formatDuration((total - n) / rate())}` : "";
            out.write(`${label}:${pct} ${formatBytes(n)} at ${formatBytes(Math.round(rate()))}/s${eta}\n`);
          }
        },
        finish(note) {
          const secs = (now() - t0) / 1000;
          out.write(`${label}: done, ${formatBytes(done)} in ${formatDuration(secs)} (${formatBytes(Math.round(rate()))}/s)${note ? ` ${note}` : ""}\n`);
        },
        fail(note) {
          out.write(`${label}: ${note}\n`);
        },
      };
    },
  };
}

/** The bar on a terminal, plain lines when stderr is a file or a pipe. */
export function defaultProgress(): ProgressSink {
  const err = process.stderr;
  return err.isTTY ? terminalProgress(err) : plainProgress(err);
}
