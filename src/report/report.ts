/**
 * `virnuc report DIR... [-o FILE]` and the report `predict` leaves in its output directory:
 * one self-contained HTML page per run (or one cohort page for several runs).
 */
import { dirname, join, resolve, sep } from "node:path";
import { existsSync, statSync } from "node:fs";
import { writeFileAtomic } from "../output/atomic.ts";
import { UserError, oneLine } from "../util/errors.ts";
import pkg from "../../package.json" with { type: "json" };
import { collectRun, readRun, type RunData } from "./data.ts";
import { cohortCharts, runCharts } from "./charts.ts";
import { cohortPage, runPage } from "./html.ts";

export const REPORT_FILE = "report.html";

export interface ReportOptions {
  /** where to write (default DIR/report.html) */
  output?: string;
  /**
   * When given, a failure is passed here as one line and writeReport returns null instead of
   * throwing (the end of `predict`: the run's outputs are already written).
   */
  onError?: (message: string) => void;
}

/** The HTML of the report for one directory, or the cohort page for several. */
export async function buildReport(dirs: string[]): Promise<{ html: string; data: RunData[]; charts: string[] }> {
  const data: RunData[] = [];
  for (const d of dirs) data.push(await collectRun(d));
  if (data.length === 1) {
    const charts = await runCharts(data[0]);
    return { html: runPage(data[0], charts, pkg.version), data, charts: charts.map((c) => c.id) };
  }
  nameSamples(data);
  const charts = await cohortCharts(data);
  return { html: cohortPage(data, charts, pkg.version), data, charts: charts.map((c) => c.id) };
}

/** Sample names: the directories' base names, with as many parent folders as needed to tell them apart. */
export function nameSamples(data: { dir: string; name: string }[]): void {
  const parts = data.map((d) => d.dir.split(sep).filter(Boolean));
  for (let depth = 1; ; depth++) {
    const names = parts.map((p) => p.slice(-depth).join("/"));
    const unique = new Set(names).size === names.length;
    if (unique || parts.every((p) => p.length <= depth)) {
      data.forEach((d, i) => (d.name = names[i]));
      return;
    }
  }
}

/** Write DIR/report.html (or opts.output) from a finished output directory; returns its path. */
export async function writeReport(dir: string, opts: ReportOptions = {}): Promise<string | null> {
  try {
    const out = resolve(opts.output ?? join(dir, REPORT_FILE));
    const { html } = await buildReport([dir]);
    writeFileAtomic(out, html);
    return out;
  } catch (err) {
    if (!opts.onError) throw err;
    opts.onError(`${REPORT_FILE} not written: ${oneLine(err)} (rebuild it with: virnuc report ${dir})`);
    return null;
  }
}

export async function reportCommand(dirs: string[], opts: { output?: string }): Promise<void> {
  if (!dirs?.length) throw new UserError("report: give one output directory (or several, one per sample, for a cohort page)");
  if (dirs.length > 1 && !opts.output) throw new UserError("report: several directories make one cohort page: say where with -o FILE");
  for (const d of dirs) readRun(resolve(d)); // a bad directory is reported before anything else
  const out = resolve(opts.output ?? join(dirs[0], REPORT_FILE));
  if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`report: -o ${opts.output} is a directory: give a file name, e.g. ${join(opts.output!, REPORT_FILE)}`);
  if (!existsSync(dirname(out))) throw new UserError(`report: the directory of ${out} does not exist`);
  const { html } = await buildReport(dirs);
  writeFileAtomic(out, html);
  console.error(`virnuc: wrote ${out} (${(html.length / 1024).toFixed(0)} KiB)`);
}
