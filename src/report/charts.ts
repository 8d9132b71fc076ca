/**
 * The report's charts: Vega-Lite specifications compiled by `vega-lite` and rendered to static
 * SVG by `vega` (View.toSVG, headless, no DOM, no canvas) when the report is written.
 *
 * Why Vega-Lite + Vega: a declarative grammar maintained by the UW Interactive Data Lab, with a
 * headless SVG renderer that runs as is in Bun (no DOM shim, no native canvas), so the page
 * carries finished SVG and needs no script, font or network to display, now or years later.
 * Both packages are pinned exactly in package.json.
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import { SCORE_BINS, type RunData, type TopSequence } from "./data.ts";

export const CALL_COLORS = { virus: "#d62728", others: "#1f77b4", "no frame": "#b0b0b0", "no call": "#b0b0b0" } as const;
const WIDTH = 560;

export interface Chart {
  /** stable id, also the figure's id in the page */
  id: string;
  title: string;
  /** one sentence under the chart: how to read it */
  caption: string;
  svg: string;
}

type Spec = vl.TopLevelSpec;

const baseConfig = {
  background: "white",
  // no ARIA label per mark: with thousands of marks they would be most of the page's size
  aria: false,
  font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  view: { stroke: "#ddd" },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#eee" },
  legend: { labelFontSize: 11, titleFontSize: 12 },
};

let chartSerial = 0;

/** Render a Vega-Lite spec to an SVG string with ids made unique to this chart. */
export async function renderSvg(spec: Spec): Promise<string> {
  const compiled = vl.compile({ ...spec, config: { ...baseConfig, ...(spec as { config?: object }).config } } as Spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    // Several SVGs share one page: give their clip path / gradient ids a per-chart prefix.
    const prefix = `c${++chartSerial}-`;
    return compactSvg(svg).replace(/\bid="([^"]+)"/g, `id="${prefix}$1"`).replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`);
  } finally {
    view.finalize();
  }
}

/** Geometry attributes rounded to 1/100 px (vega writes up to 16 digits); text is left alone. */
export function compactSvg(svg: string): string {
  return svg.replace(/ (transform|d|x|y|x1|x2|y1|y2|width|height)="([^"]*)"/g, (_m, k: string, v: string) => ` ${k}="${v.replace(/(\.\d\d)\d+/g, "$1")}"`);
}

const callScale = (domain: string[]) => ({
  domain,
  range: domain.map((d) => CALL_COLORS[d as keyof typeof CALL_COLORS] ?? "#888"),
});

/** Histogram data: one row per (bin, call) with a count. */
function histRows(h: { virus: number[]; others: number[] }, extra: Record<string, unknown> = {}) {
  const rows: Record<string, unknown>[] = [];
  for (const call of ["others", "virus"] as const)
    h[call].forEach((count, i) => {
      if (count > 0) rows.push({ lo: i / SCORE_BINS, hi: (i + 1) / SCORE_BINS, call, count, ...extra });
    });
  return rows;
}

function histogramSpec(rows: Record<string, unknown>[], xTitle: string, yTitle: string): Spec {
  return {
    width: 400,
    height: 180,
    data: { values: rows },
    mark: { type: "bar", stroke: "white", strokeWidth: 0.5 },
    encoding: {
      // pre-binned: vertical bars from lo to hi, counts stacked by call
      x: {
        field: "lo",
        type: "quantitative",
        bin: { binned: true, step: 1 / SCORE_BINS },
        title: xTitle,
        scale: { domain: [0, 1] },
        axis: { values: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1], format: ".1f" },
      },
      x2: { field: "hi" },
      y: { field: "count", type: "quantitative", title: yTitle, stack: "zero" },
      color: { field: "call", type: "nominal", title: "call", scale: callScale(["virus", "others"]) },
    },
  } as Spec;
}

/** Viral / not viral / no call, as fractions, for sequences, windows and frames. */
function callsSpec(rows: { level: string; call: string; count: number; order: number }[], yField = "level", yTitle = "", step = 26): Spec {
  return {
    width: WIDTH,
    data: { values: rows },
    mark: "bar",
    height: { step },
    encoding: {
      y: { field: yField, type: "nominal", title: yTitle || null, sort: null },
      x: { field: "count", type: "quantitative", stack: "normalize", title: "fraction", axis: { format: "%" } },
      color: { field: "call", type: "nominal", title: "call", scale: callScale(["virus", "others", "no call"]) },
      order: { field: "order", type: "quantitative" },
    },
  } as Spec;
}

function callRows(level: string, c: { virus: number; others: number; none: number }) {
  return [
    { level, call: "virus", count: c.virus, order: 0 },
    { level, call: "others", count: c.others, order: 1 },
    { level, call: "no call", count: c.none, order: 2 },
  ];
}

/** Sequences with more points than this are drawn without the dots. */
const MAX_DOTS = 80;

/**
 * drew_fig.py generalised: per-window max score_virus along each of the top sequences; one panel
 * per sequence, each window a short horizontal segment over its extent with a dot at its centre.
 */
function alongSpec(top: (TopSequence & { label: string })[]): Spec {
  const rows: Record<string, unknown>[] = [];
  for (const s of top) {
    // dots only where they stay apart; a long sequence shows its segments alone
    const dot = s.points.length <= MAX_DOTS;
    for (const p of s.points)
      rows.push({ seq: s.label, start: p.start, end: p.end, pos: (p.start + p.end) / 2, score: p.score ?? 0, scored: p.score !== null, call: p.call, dot });
  }
  const x = { type: "quantitative", title: null, scale: { nice: false, zero: true }, axis: { labelFlush: true } };
  const y = { field: "score", type: "quantitative", title: "score", scale: { domain: [0, 1] }, axis: { values: [0, 0.5, 1] } };
  const color = { field: "call", type: "nominal", title: "window call", scale: callScale(["virus", "others", "no frame"]) };
  return {
    data: { values: rows },
    facet: {
      row: {
        field: "seq",
        type: "nominal",
        sort: top.map((s) => s.label),
        title: null,
        header: { labelAngle: 0, labelAlign: "left", labelAnchor: "start", labelOrient: "top", labelFontSize: 11, labelLimit: WIDTH, labelPadding: 4 },
      },
    },
    spacing: 6,
    spec: {
      width: WIDTH,
      height: 56,
      layer: [
        { mark: { type: "rule", color: "#999", strokeDash: [3, 3] }, encoding: { y: { datum: 0.5, type: "quantitative" } } },
        {
          transform: [{ filter: "datum.scored" }],
          mark: { type: "line", color: "#aaa", strokeWidth: 1 },
          encoding: { x: { field: "pos", ...x }, y },
        },
        {
          mark: { type: "rule", strokeWidth: 2 },
          encoding: { x: { field: "start", ...x }, x2: { field: "end" }, y, color },
        },
        {
          transform: [{ filter: "datum.dot" }],
          mark: { type: "point", filled: true, size: 26, opacity: 1 },
          encoding: { x: { field: "pos", ...x }, y, color },
        },
      ],
    },
    resolve: { scale: { x: "independent" } },
  } as Spec;
}

type Telemetry = Record<string, number>;

/** Per-part series, binned to at most `max` points (consecutive parts averaged) for long runs. */
function perPart(tel: Telemetry[], max = 400): Telemetry[] {
  const sorted = [...tel].sort((a, b) => (a.part ?? 0) - (b.part ?? 0));
  if (sorted.length <= max) return sorted;
  const per = Math.ceil(sorted.length / max);
  const out: Telemetry[] = [];
  for (let i = 0; i < sorted.length; i += per) {
    const g = sorted.slice(i, i + per);
    const avg: Telemetry = { part: g[0].part };
    for (const k of Object.keys(g[0])) if (k !== "part") avg[k] = g.reduce((a, x) => a + (Number(x[k]) || 0), 0) / g.length;
    out.push(avg);
  }
  return out;
}

function telemetrySpecs(tel: Telemetry[]): { tokens: Spec; time: Spec } {
  const parts = perPart(tel);
  const tokens = parts.map((t) => ({ part: t.part, tps: t.tokens_per_s ?? 0 }));
  const series: [string, string][] = [
    ["device_s", "device compute"],
    ["host_prepare_s", "host prepare"],
    ["host_wait_for_device_s", "host waits for device"],
    ["device_wait_for_host_s", "device waits for host"],
  ];
  const time: Record<string, unknown>[] = [];
  for (const t of parts) for (const [k, label] of series) time.push({ part: t.part, what: label, seconds: Number(t[k]) || 0 });
  return {
    tokens: {
      width: WIDTH,
      height: 160,
      data: { values: tokens },
      mark: { type: "line", point: { size: 18 }, color: "#4c78a8" },
      encoding: {
        x: { field: "part", type: "quantitative", title: "part", axis: { tickMinStep: 1, format: "d" } },
        y: { field: "tps", type: "quantitative", title: "tokens/s" },
      },
    } as Spec,
    time: {
      width: WIDTH,
      height: 170,
      data: { values: time },
      mark: { type: "line", point: { size: 18 } },
      encoding: {
        x: { field: "part", type: "quantitative", title: "part", axis: { tickMinStep: 1, format: "d" } },
        y: { field: "seconds", type: "quantitative", title: "seconds" },
        color: { field: "what", type: "nominal", title: null, sort: series.map((s) => s[1]), legend: { orient: "bottom", columns: 2, labelLimit: 320 } },
      },
    } as Spec,
  };
}

const fmtCount = (n: number) => n.toLocaleString("en-US");

/** The charts of a one-run page. */
export async function runCharts(d: RunData): Promise<Chart[]> {
  const charts: Chart[] = [];
  charts.push({
    id: "chart-calls",
    title: "Calls",
    caption: "Fraction of sequences, windows and frames called viral (red), not viral (blue) or not called (grey: no window / frame kept).",
    svg: await renderSvg(
      callsSpec([...callRows(`sequences (${fmtCount(d.sequences.total)})`, d.sequences), ...callRows(`windows (${fmtCount(d.windows.total)})`, d.windows), ...callRows(`frames (${fmtCount(d.frames.total)})`, { ...d.frames, none: 0 })]),
    ),
  });
  charts.push({
    id: "chart-frame-scores",
    title: "score_virus per frame",
    caption: `Histogram of score_virus over every kept frame (${SCORE_BINS} bins on [0, 1]), coloured by the frame's prediction.`,
    svg: await renderSvg(histogramSpec(histRows(d.frameHist), "score_virus", "frames")),
  });
  charts.push({
    id: "chart-window-scores",
    title: "Per-window maximum score_virus",
    caption: "Histogram of each window's highest frame score_virus (windows without a kept frame are left out), coloured by the window's call.",
    svg: await renderSvg(histogramSpec(histRows(d.windowHist), "max score_virus of the window", "windows")),
  });
  if (d.top.length > 0)
    charts.push({
      id: "chart-along",
      title: `Scores along the top ${d.top.length} sequences`,
      caption:
        "VirNucPro's drew_fig.py figure, generalised: each panel is one sequence (the ones with the most viral windows; x in bp), each segment a window over its extent (with a dot at its centre when there are few), its height the window's max score_virus, its colour the window's call; grey at 0: no frame kept. Long sequences show the max over runs of neighbouring windows.",
      svg: await renderSvg(alongSpec(d.top.map((s) => ({ ...s, label: topLabel(s) })))),
    });
  const tel = Array.isArray(d.run.telemetry) ? (d.run.telemetry as Telemetry[]) : [];
  if (tel.length > 0) {
    const t = telemetrySpecs(tel);
    charts.push({
      id: "chart-tokens",
      title: "Throughput per part",
      caption: "Tokens per second of device time (both encoders) for each part of the input, in input order.",
      svg: await renderSvg(t.tokens),
    });
    charts.push({
      id: "chart-time",
      title: "Where the time went, per part",
      caption:
        "Seconds per part: device compute, host preparation (reading, frames, tokens, packing), the host waiting for the device, and the device idle waiting for the host (the last should stay near 0).",
      svg: await renderSvg(t.time),
    });
  }
  return charts;
}

export function topLabel(s: TopSequence, prefix = ""): string {
  const id = s.id.length > 60 ? s.id.slice(0, 57) + "..." : s.id;
  return `${prefix}${id}: ${fmtCount(s.length)} bp, ${s.nViralWindows}/${s.nWindows} viral windows`;
}

/** A cohort page draws one score line per sample up to this many samples, a pooled histogram beyond. */
export const MAX_LINES = 20;

/** The charts of a cohort page (several samples). */
export async function cohortCharts(samples: RunData[]): Promise<Chart[]> {
  const charts: Chart[] = [];
  const label = (d: RunData, i: number) => `${d.name}` + (samples.filter((x) => x.name === d.name).length > 1 ? ` #${i + 1}` : "");
  const calls = samples.flatMap((d, i) => callRows(label(d, i), d.sequences));
  charts.push({
    id: "chart-cohort-calls",
    title: "Sequences called viral, per sample",
    caption: "Fraction of each sample's sequences called viral (red), not viral (blue) or not called (grey).",
    svg: await renderSvg(callsSpec(calls, "level", "sample", samples.length > 40 ? 12 : 26)),
  });
  if (samples.length <= MAX_LINES) {
    const hist: Record<string, unknown>[] = [];
    samples.forEach((d, i) => {
      const total = d.windows.virus + d.windows.others;
      for (let b = 0; b < SCORE_BINS; b++)
        hist.push({ sample: label(d, i), x: (b + 0.5) / SCORE_BINS, frac: total > 0 ? (d.windowHist.virus[b] + d.windowHist.others[b]) / total : 0 });
    });
    charts.push({
      id: "chart-cohort-window-scores",
      title: "Per-window maximum score_virus, per sample",
      caption: `Fraction of each sample's windows (with a kept frame) per score bin (${SCORE_BINS} bins on [0, 1]), one line per sample.`,
      svg: await renderSvg({
        width: WIDTH,
        height: 200,
        data: { values: hist },
        mark: { type: "line", interpolate: "step-after" },
        encoding: {
          x: { field: "x", type: "quantitative", title: "max score_virus of the window", scale: { domain: [0, 1] } },
          y: { field: "frac", type: "quantitative", title: "fraction of windows", axis: { format: "%" } },
          color: { field: "sample", type: "nominal", title: "sample", legend: { labelLimit: 240 } },
        },
      } as Spec),
    });
  } else {
    // Many samples: one line each would be unreadable (and heavy); pool them.
    const pooled = { virus: new Array(SCORE_BINS).fill(0), others: new Array(SCORE_BINS).fill(0) };
    for (const d of samples)
      for (let b = 0; b < SCORE_BINS; b++) {
        pooled.virus[b] += d.windowHist.virus[b];
        pooled.others[b] += d.windowHist.others[b];
      }
    charts.push({
      id: "chart-cohort-window-scores",
      title: "Per-window maximum score_virus, all samples pooled",
      caption: `Histogram of each window's highest frame score_virus over all ${samples.length} samples (${SCORE_BINS} bins on [0, 1]), coloured by the window's call; with more than ${MAX_LINES} samples they are pooled rather than drawn one line each.`,
      svg: await renderSvg(histogramSpec(histRows(pooled), "max score_virus of the window", "windows")),
    });
  }
  // The top sequences over all samples.
  const all = samples.flatMap((d, i) => d.top.map((s) => ({ ...s, label: topLabel(s, `${label(d, i)} / `) })));
  all.sort((a, b) => b.nViralWindows - a.nViralWindows || (b.maxScore ?? -1) - (a.maxScore ?? -1));
  const top = all.slice(0, samples[0]?.top.length ? Math.max(...samples.map((s) => s.top.length)) : 0);
  if (top.length > 0)
    charts.push({
      id: "chart-along",
      title: `Scores along the top ${top.length} sequences of the cohort`,
      caption: "As on a one-run page: each panel one sequence (sample / id), each dot a window, its height the window's max score_virus, its colour the window's call.",
      svg: await renderSvg(alongSpec(top)),
    });
  return charts;
}
