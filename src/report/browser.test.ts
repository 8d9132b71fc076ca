/**
 * The report in a real browser: headless Chromium opens it from disk with every non-file request
 * refused; no console error, no failed request, every chart drawn with a non-zero size.
 * Needs Debian's chromium at /usr/bin/chromium (.ci/run installs it when missing).
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Chromium } from "./browser.ts";
import { buildReport } from "./report.ts";
import { writeSampleDir } from "./testdata.ts";

// Parquet writing, page rendering and subprocesses are slow on a loaded 2-core machine.
setDefaultTimeout(60_000);

let root: string;
let chromium: Chromium;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "virnuc-report-browser-"));
  chromium = await Chromium.launch();
  await writeSampleDir(join(root, "a"), { records: 150, seed: 11, longEvery: 25, longWindows: 300 });
  await writeSampleDir(join(root, "b"), { records: 90, seed: 12 });
}, 60_000);
afterAll(async () => {
  await chromium?.close();
  rmSync(root, { recursive: true, force: true });
});

async function check(dirs: string[], name: string) {
  const { html, charts } = await buildReport(dirs);
  const path = join(root, name);
  writeFileSync(path, html);
  const seen = await chromium.open(path);
  expect(seen.consoleErrors).toEqual([]);
  expect(seen.failedRequests).toEqual([]);
  expect(seen.charts.map((c) => c.id)).toEqual(charts);
  for (const c of seen.charts) {
    expect(c.width).toBeGreaterThan(100);
    expect(c.height).toBeGreaterThan(50);
  }
  return seen;
}

describe("report in headless Chromium", () => {
  test("one run: opens offline from disk, no errors, every chart drawn", async () => {
    const seen = await check([join(root, "a")], "one.html");
    expect(seen.title).toBe("virnuc report: a");
    expect(seen.charts.length).toBe(6);
  }, 90_000);

  test("cohort page: opens offline from disk, no errors, every chart drawn", async () => {
    const seen = await check([join(root, "a"), join(root, "b")], "cohort.html");
    expect(seen.title).toBe("virnuc cohort report: 2 samples");
  }, 90_000);

  test("the check sees what it must refuse: a network request, a console error, an empty chart", async () => {
    const path = join(root, "bad.html");
    writeFileSync(
      path,
      `<!DOCTYPE html><html><head><title>bad</title></head><body>
<img src="http://192.0.2.1/x.png" alt="">
<script>console.error("boom")</script>
<figure class="chart" id="empty"><svg width="0" height="0"></svg></figure></body></html>`,
    );
    const seen = await chromium.open(path);
    expect(seen.consoleErrors).toContain("boom");
    expect(seen.failedRequests.some((r) => r.startsWith("http://192.0.2.1/x.png"))).toBe(true);
    expect(seen.charts).toEqual([{ id: "empty", width: 0, height: 0 }]);
  }, 90_000);
});
