/** Shared benchmark reporting: the machine, medians, a text table and an SVG line plot. */
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** (max - min) / median: the relative spread of repeats. */
export function spread(xs: number[]): number {
  return (Math.max(...xs) - Math.min(...xs)) / median(xs);
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  bun: string;
  gpu?: string;
  driver?: string;
  gpuClocks?: string;
}

export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux
  }
  const info: MachineInfo = { cpu, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), bun: Bun.version };
  try {
    const p = Bun.spawnSync(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm", "--format=csv,noheader"]);
    if (p.exitCode === 0) {
      const lines = p.stdout.toString().trim().split("\n");
      const [name, driver, sm, smMax] = lines[0].split(",").map((x) => x.trim());
      info.gpu = lines.length > 1 ? `${lines.length}x ${name}` : name;
      info.driver = driver;
      info.gpuClocks = `${sm} (max ${smMax})`;
    }
  } catch {
    // no NVIDIA driver
  }
  return info;
}

export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => "| " + r.map((c, i) => c.padStart(w[i])).join(" | ") + " |";
  return [line(head), "|" + w.map((n) => "-".repeat(n + 2)).join("|") + "|", ...rows.map(line)].join("\n");
}

export function svgLinePlot(p: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][] }[];
  refLines?: { name: string; y: number }[];
  logX?: boolean;
}): string {
  const W = 760, H = 440, L = 70, R = 250, T = 40, B = 50;
  const xs = p.series.flatMap((s) => s.points.map((q) => q[0]));
  const ys = [...p.series.flatMap((s) => s.points.map((q) => q[1])), ...(p.refLines ?? []).map((r) => r.y)];
  if (xs.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"/>`;
  const fx = (x: number) => (p.logX ? Math.log2(x) : x);
  const x0 = Math.min(...xs.map(fx)), x1 = Math.max(...xs.map(fx));
  const y1 = Math.max(...ys) * 1.1;
  const sx = (x: number) => L + ((fx(x) - x0) / Math.max(x1 - x0, 1e-9)) * (W - L - R);
  const sy = (y: number) => H - B - (y / y1) * (H - T - B);
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14">${esc(p.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    `<text x="16" y="${(T + H - B) / 2}" transform="rotate(-90 16 ${(T + H - B) / 2})" text-anchor="middle">${esc(p.yLabel)}</text>`,
  ];
  for (const x of [...new Set(xs)].sort((a, b) => a - b))
    out.push(`<text x="${sx(x)}" y="${H - B + 16}" text-anchor="middle">${x}</text>`);
  for (let i = 0; i <= 5; i++) {
    const y = (y1 * i) / 5;
    out.push(`<text x="${L - 6}" y="${sy(y) + 4}" text-anchor="end">${y.toFixed(0)}</text>`);
    out.push(`<line x1="${L}" y1="${sy(y)}" x2="${W - R}" y2="${sy(y)}" stroke="#eee"/>`);
  }
  let legend = T;
  p.series.forEach((s, i) => {
    const c = colors[i % colors.length];
    const pts = s.points.map((q) => `${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join(" ");
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts}"/>`);
    for (const q of s.points) out.push(`<circle cx="${sx(q[0])}" cy="${sy(q[1])}" r="3" fill="${c}"/>`);
    out.push(`<rect x="${W - R + 10}" y="${legend}" width="12" height="3" fill="${c}"/><text x="${W - R + 28}" y="${legend + 5}">${esc(s.name)}</text>`);
    legend += 18;
  });
  (p.refLines ?? []).forEach((r, i) => {
    const c = colors[(i + p.series.length) % colors.length];
    out.push(`<line x1="${L}" y1="${sy(r.y)}" x2="${W - R}" y2="${sy(r.y)}" stroke="${c}" stroke-dasharray="6 4"/>`);
    out.push(`<rect x="${W - R + 10}" y="${legend}" width="12" height="3" fill="${c}"/><text x="${W - R + 28}" y="${legend + 5}">${esc(r.name)}</text>`);
    legend += 18;
  });
  out.push("</svg>");
  return out.join("\n");
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
