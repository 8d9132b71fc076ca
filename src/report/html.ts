/**
 * The report page: one self-contained HTML file (inline style, static SVG charts, no script, no
 * external resource), readable offline in any browser.
 */
import type { Chart } from "./charts.ts";
import type { CallCounts, RunData } from "./data.ts";

/** Escape text for HTML content and attribute values. */
export function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const num = (x: unknown): number | undefined => (typeof x === "number" && Number.isFinite(x) ? x : undefined);
const obj = (x: unknown): Record<string, unknown> => (x && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, unknown>) : {});

export function fmtNum(x: unknown, digits = 0): string {
  const n = num(x);
  if (n === undefined) return "—";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A rate with 3 significant figures and k / M suffixes. */
export function fmtRate(x: unknown): string {
  const n = num(x);
  if (n === undefined) return "—";
  if (n >= 1e6) return `${(n / 1e6).toPrecision(3)} M`;
  if (n >= 1e3) return `${(n / 1e3).toPrecision(3)} k`;
  return n.toPrecision(3);
}

export function fmtSeconds(x: unknown): string {
  const n = num(x);
  if (n === undefined) return "—";
  if (n < 60) return `${n.toFixed(n < 10 ? 2 : 1)} s`;
  const h = Math.floor(n / 3600);
  const m = Math.floor((n % 3600) / 60);
  const s = Math.round(n % 60);
  return h > 0 ? `${h} h ${m} min ${s} s` : `${m} min ${s} s`;
}

export function fmtBytes(x: unknown): string {
  const n = num(x);
  if (n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(1)}%` : "—");

const STYLE = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0; background: #f6f6f4; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.sub { color: #666; margin: 0 0 12px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; border-bottom: 1px solid #f0f0f0; }
th { color: #555; font-weight: 600; white-space: nowrap; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
figure.chart { margin: 14px 0 22px; }
figure.chart figcaption { color: #555; font-size: 12.5px; max-width: 760px; margin-top: 4px; }
figure.chart h3 { font-size: 14px; margin: 0 0 4px; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 0 24px; }
ul.warn li { color: #8a4b00; }
.ok { color: #2a7a2a; }
footer { color: #888; font-size: 12px; margin-top: 32px; }
`;

function row(label: string, value: string): string {
  return `<tr><th>${esc(label)}</th><td>${value}</td></tr>`;
}

function chartHtml(c: Chart): string {
  return `<figure class="chart" id="${esc(c.id)}" data-chart="${esc(c.id)}"><h3>${esc(c.title)}</h3>${c.svg}<figcaption>${esc(c.caption)}</figcaption></figure>`;
}

function page(title: string, body: string, version: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="virnuc ${esc(version)}">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
<footer>Written by virnuc ${esc(version)} (<code>virnuc report</code>). One self-contained file: it needs no network.</footer>
</main>
</body>
</html>
`;
}

function filesTable(files: { role: string; path: unknown; bytes: unknown; sha256: unknown }[]): string {
  if (files.length === 0) return "<p>—</p>";
  return (
    `<table><tr><th></th><th>file</th><th class="n">size</th><th>sha256</th></tr>` +
    files
      .map(
        (f) =>
          `<tr><th>${esc(f.role)}</th><td class="mono">${esc(f.path)}</td><td class="n">${fmtBytes(f.bytes)}</td><td class="mono">${f.sha256 ? esc(f.sha256) : "not recorded"}</td></tr>`,
      )
      .join("") +
    `</table>`
  );
}

/** Model files from run.json: `models.files` (predict) or `models` as the run state lists them (merge). */
function modelFiles(run: Record<string, unknown>): { role: string; path: unknown; bytes: unknown; sha256: unknown }[] {
  const m = obj(run.models);
  const files = obj(m.files ?? m);
  const out: { role: string; path: unknown; bytes: unknown; sha256: unknown }[] = [];
  for (const role of Object.keys(files)) {
    const list = files[role];
    if (!Array.isArray(list)) continue;
    for (const f of list) {
      const o = obj(f);
      out.push({ role, path: o.path, bytes: o.bytes, sha256: o.sha256 });
    }
  }
  return out;
}

function callsTable(d: { sequences: CallCounts; windows: CallCounts; frames: CallCounts }): string {
  const r = (name: string, c: CallCounts, noneLabel: string) =>
    `<tr><th>${name}</th><td class="n">${fmtNum(c.total)}</td><td class="n">${fmtNum(c.virus)}</td><td class="n">${pct(c.virus, c.total)}</td><td class="n">${fmtNum(c.others)}</td><td class="n">${pct(c.others, c.total)}</td><td class="n">${noneLabel ? fmtNum(c.none) : "—"}</td></tr>`;
  return (
    `<table><tr><th></th><th class="n">total</th><th class="n">viral</th><th class="n">fraction</th><th class="n">not viral</th><th class="n">fraction</th><th class="n">no call</th></tr>` +
    r("sequences", d.sequences, "x") +
    r("windows", d.windows, "x") +
    r("frames", d.frames, "") +
    `</table><p class="sub">A window is viral when its best frame's score_virus is at least its score_others; a sequence when any of its windows is; “no call”: no window (sequence) or no frame (window) was kept (every frame had a stop codon).</p>`
  );
}

function warningsHtml(run: Record<string, unknown>): string {
  const w = run.warnings;
  if (!Array.isArray(w)) return `<p class="sub">This run.json does not record warnings (it was written by an earlier virnuc).</p>`;
  if (w.length === 0) return `<p class="ok">None.</p>`;
  const shown = w.slice(0, 200);
  return `<ul class="warn">${shown.map((x) => `<li>${esc(x)}</li>`).join("")}</ul>` + (w.length > shown.length ? `<p class="sub">... and ${w.length - shown.length} more (see run.json).</p>` : "");
}

function runTable(d: RunData): string {
  const run = d.run;
  const s = obj(run.summary);
  const enc = (k: "esm" | "dnabert") => obj(s[k]);
  const rows: string[] = [];
  rows.push(row("command", `<code>${esc(run.command ?? "—")}</code>` + (Array.isArray(run.argv) ? ` <span class="mono">${esc((run.argv as unknown[]).join(" "))}</span>` : "")));
  // run.json's provenance: virnuc.{version, commit}
  const v = obj(run.virnuc);
  const version = typeof v.version === "string" ? v.version + (typeof v.commit === "string" ? ` (${v.commit.slice(0, 12)})` : "") : undefined;
  rows.push(row("virnuc version", version ? esc(version) : "not recorded in run.json"));
  rows.push(row("directory", `<span class="mono">${esc(d.dir)}</span>`));
  const counts = obj(run.counts);
  if (counts.finishedAt) rows.push(row("finished", esc(counts.finishedAt)));
  rows.push(row("device", esc(run.device ?? "—")));
  rows.push(row("precision", esc(run.precision ?? "—")));
  if (num(run.recheckMargin))
    rows.push(
      row(
        "fp16 recheck",
        `near-boundary frames (--recheck-margin ${esc(String(run.recheckMargin))}) redone in fp16: ${fmtNum(s.recheckFrames ?? 0)} of ${fmtNum(s.frames)} frames, ${fmtSeconds(s.recheckSeconds)}`,
      ),
    );
  if (run.chunkSize !== undefined) rows.push(row("chunk size", `${fmtNum(run.chunkSize)} bp`));
  if (run.windowReads !== undefined) rows.push(row("records per part", fmtNum(run.windowReads)));
  rows.push(row("wall time", fmtSeconds(run.wallSeconds)));
  if (run.modelLoadSeconds !== undefined) rows.push(row("model load", fmtSeconds(run.modelLoadSeconds)));
  if (run.computeSeconds !== undefined) rows.push(row("compute", fmtSeconds(run.computeSeconds)));
  rows.push(row("reads", fmtNum(s.reads ?? counts.totalRecords)));
  rows.push(row("reads/s", fmtRate(s.readsPerSecond) + (s.readsPerSecond !== undefined ? " <span class=\"sub\">(over the compute time)</span>" : "")));
  for (const [k, name] of [["esm", "ESM-2"], ["dnabert", "DNABERT-S"]] as const) {
    const e = enc(k);
    if (Object.keys(e).length === 0) continue;
    rows.push(
      row(
        name,
        `${fmtRate(e.tokensPerSecond)} tokens/s; ${fmtNum(e.tokens)} tokens in ${fmtNum(e.batches)} batches; packing ${num(e.packingEfficiency) !== undefined ? `${(100 * (e.packingEfficiency as number)).toFixed(1)}%` : "—"} of budget slots`,
      ),
    );
  }
  const parts = num(run.totalParts) ?? num(counts.totalParts);
  if (parts !== undefined) rows.push(row("parts", `${fmtNum(parts)}` + (num(run.resumedParts) ? ` (${fmtNum(run.resumedParts)} kept from an earlier run)` : "")));
  if (Array.isArray(run.shards)) rows.push(row("merged shards", fmtNum(run.shards.length)));
  return `<table>${rows.join("")}</table>`;
}

function timeTable(run: Record<string, unknown>): string {
  const s = obj(run.summary);
  const tel = Array.isArray(run.telemetry) ? (run.telemetry as Record<string, unknown>[]) : [];
  if (tel.length === 0) return `<p class="sub">This run.json has no per-part telemetry${run.command === "merge" ? " (a merged run: see each shard's report)" : ""}.</p>`;
  const device = tel.reduce((a, t) => a + (num(t.device_s) ?? 0), 0);
  return (
    `<table>` +
    row("device compute (sum over parts)", fmtSeconds(device)) +
    row("host prepare (sum)", fmtSeconds(s.hostPrepareSeconds)) +
    row("host waits for device (sum)", fmtSeconds(s.hostWaitForDeviceSeconds)) +
    row("device waits for host (sum, lower bound)", fmtSeconds(s.deviceWaitForHostSeconds)) +
    `</table>`
  );
}

function topTable(d: RunData): string {
  if (d.top.length === 0) return "";
  return (
    `<table><tr><th>sequence</th><th class="n">length</th><th class="n">windows</th><th class="n">viral windows</th><th class="n">max score_virus</th><th>call</th></tr>` +
    d.top
      .map(
        (s) =>
          `<tr><td class="mono">${esc(s.id)}</td><td class="n">${fmtNum(s.length)}</td><td class="n">${fmtNum(s.nWindows)}</td><td class="n">${fmtNum(s.nViralWindows)}</td><td class="n">${s.maxScore === null ? "—" : s.maxScore.toFixed(4)}</td><td>${esc(s.call ?? "no call")}</td></tr>`,
      )
      .join("") +
    `</table>`
  );
}

function inputsOf(run: Record<string, unknown>) {
  const inputs = Array.isArray(run.inputs) ? (run.inputs as unknown[]) : [];
  return inputs.map((x, i) => {
    const o = obj(x);
    return { role: `${i + 1}`, path: o.path ?? x, bytes: o.bytes, sha256: o.sha256 };
  });
}

function outputsOf(run: Record<string, unknown>) {
  const o = obj(run.outputs);
  return Object.keys(o).map((k) => ({ role: `${fmtNum(obj(o[k]).rows)} rows`, path: k, bytes: obj(o[k]).bytes, sha256: obj(o[k]).sha256 }));
}

/** The page for one run. */
export function runPage(d: RunData, charts: Chart[], version: string): string {
  const byId = new Map(charts.map((c) => [c.id, c]));
  const chart = (id: string) => (byId.has(id) ? chartHtml(byId.get(id)!) : "");
  const body = [
    `<h1>virnuc report: ${esc(d.name)}</h1>`,
    `<p class="sub">${fmtNum(d.sequences.total)} sequences, ${fmtNum(d.windows.total)} windows, ${fmtNum(d.frames.total)} frames; ${fmtNum(d.sequences.virus)} sequences (${pct(d.sequences.virus, d.sequences.total)}) called viral.</p>`,
    `<h2>Run</h2>`,
    runTable(d),
    `<h3>Inputs</h3>`,
    filesTable(inputsOf(d.run)),
    `<h3>Models</h3>`,
    filesTable(modelFiles(d.run)),
    `<h2>Calls</h2>`,
    callsTable(d),
    chart("chart-calls"),
    `<h2>Scores</h2>`,
    `<div class="grid">${chart("chart-frame-scores")}${chart("chart-window-scores")}</div>`,
    `<h2>Top sequences</h2>`,
    d.top.length ? `<p class="sub">The ${d.top.length} sequences with the most viral windows (then the highest score).</p>` : `<p class="sub">No sequence has a window with a kept frame.</p>`,
    topTable(d),
    chart("chart-along"),
    `<h2>Where the time went</h2>`,
    timeTable(d.run),
    chart("chart-tokens"),
    chart("chart-time"),
    `<h2>Warnings</h2>`,
    warningsHtml(d.run),
    `<h2>Output files</h2>`,
    filesTable(outputsOf(d.run)),
  ].join("\n");
  return page(`virnuc report: ${d.name}`, body, version);
}

/** The page for several samples. */
export function cohortPage(samples: RunData[], charts: Chart[], version: string): string {
  const byId = new Map(charts.map((c) => [c.id, c]));
  const chart = (id: string) => (byId.has(id) ? chartHtml(byId.get(id)!) : "");
  const total = (k: "sequences" | "windows" | "frames") => {
    const c: CallCounts = { total: 0, virus: 0, others: 0, none: 0 };
    for (const s of samples) for (const f of ["total", "virus", "others", "none"] as const) c[f] += s[k][f];
    return c;
  };
  const sampleRows = samples
    .map((d) => {
      const s = obj(d.run.summary);
      const w = Array.isArray(d.run.warnings) ? String(d.run.warnings.length) : "—";
      return `<tr><td class="mono">${esc(d.name)}</td><td class="n">${fmtNum(d.sequences.total)}</td><td class="n">${fmtNum(d.sequences.virus)}</td><td class="n">${pct(d.sequences.virus, d.sequences.total)}</td><td class="n">${fmtNum(d.windows.total)}</td><td class="n">${pct(d.windows.virus, d.windows.total)}</td><td class="n">${fmtNum(d.frames.total)}</td><td class="n">${pct(d.frames.virus, d.frames.total)}</td><td class="n">${fmtSeconds(d.run.wallSeconds)}</td><td class="n">${fmtRate(s.readsPerSecond)}</td><td>${esc(d.run.device ?? "—")}</td><td class="n">${w}</td></tr>`;
    })
    .join("");
  const modelSets = new Set(samples.map((d) => JSON.stringify(modelFiles(d.run).map((f) => f.sha256 ?? f.path))));
  const warnings = samples
    .filter((d) => !Array.isArray(d.run.warnings) || d.run.warnings.length > 0)
    .map((d) => `<h3 class="mono">${esc(d.name)}</h3>${warningsHtml(d.run)}`)
    .join("");
  const body = [
    `<h1>virnuc cohort report: ${fmtNum(samples.length)} samples</h1>`,
    `<p class="sub">${fmtNum(total("sequences").total)} sequences in all; ${fmtNum(total("sequences").virus)} (${pct(total("sequences").virus, total("sequences").total)}) called viral.</p>`,
    `<h2>Samples</h2>`,
    `<table><tr><th>sample</th><th class="n">sequences</th><th class="n">viral</th><th class="n">fraction</th><th class="n">windows</th><th class="n">viral</th><th class="n">frames</th><th class="n">viral</th><th class="n">wall time</th><th class="n">reads/s</th><th>device</th><th class="n">warnings</th></tr>${sampleRows}</table>`,
    `<h3>Totals</h3>`,
    callsTable({ sequences: total("sequences"), windows: total("windows"), frames: total("frames") }),
    chart("chart-cohort-calls"),
    `<h2>Scores</h2>`,
    chart("chart-cohort-window-scores"),
    `<h2>Top sequences</h2>`,
    chart("chart-along"),
    `<h2>Models</h2>`,
    modelSets.size > 1 ? `<p><strong>The samples were not all run with the same model files.</strong> Those of ${esc(samples[0].name)}:</p>` : "",
    filesTable(modelFiles(samples[0].run)),
    `<h2>Warnings</h2>`,
    warnings || `<p class="ok">None.</p>`,
    `<h2>Directories</h2>`,
    `<ul>${samples.map((d) => `<li class="mono">${esc(d.dir)}</li>`).join("")}</ul>`,
  ].join("\n");
  return page(`virnuc cohort report: ${samples.length} samples`, body, version);
}
