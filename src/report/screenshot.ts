/**
 * Makes docs/report.png: `virnuc predict` with the tiny random test models on seeded synthetic
 * reads (some long records, so the along-sequence figure has something to show), then a
 * screenshot of its report.html in headless Chromium.
 *
 *   bun src/report/screenshot.ts [OUT.png]     (default docs/report.png)
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { modelArgs, runCli, syntheticFasta } from "../../test/helpers.ts";
import { openReport } from "./browser.ts";

const out = resolve(process.argv[2] ?? join(import.meta.dir, "../../docs/report.png"));
const work = mkdtempSync(join(tmpdir(), "virnuc-screenshot-"));
try {
  const long = join(work, "contigs.fa");
  const short = join(work, "reads.fa");
  syntheticFasta(long, 12, 9000, 3);
  syntheticFasta(short, 300, 500, 4);
  const dir = join(work, "sample");
  const r = runCli(["predict", long, short, "-o", dir, "--chunk-size", "300", "--window-reads", "40", "--no-progress", ...modelArgs()]);
  if (r.code !== 0) throw new Error(`predict failed: ${r.stderr}`);
  const seen = await openReport(join(dir, "report.html"), { screenshot: out, width: 1100 });
  if (seen.consoleErrors.length || seen.failedRequests.length) throw new Error(`the page is not clean: ${JSON.stringify(seen)}`);
  console.error(`wrote ${out} (${(statSync(out).size / 1024).toFixed(0)} KiB, ${seen.charts.length} charts)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
