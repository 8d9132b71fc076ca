import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { modelArgs, runCli, REFERENCE, tinyModels } from "../../test/helpers.ts";
import { buildReport, reportCommand, writeReport } from "./report.ts";
import { writeSampleDir } from "./testdata.ts";
import { collectRun } from "./data.ts";
import { MAX_LINES, cohortCharts } from "./charts.ts";
import { cohortPage } from "./html.ts";

// Parquet writing, page rendering and subprocesses are slow on a loaded 2-core machine.
setDefaultTimeout(60_000);

let root: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "virnuc-report-"));
  await writeSampleDir(join(root, "s1"), { records: 120, seed: 1, longEvery: 30, longWindows: 400 });
  await writeSampleDir(join(root, "s2"), { records: 80, seed: 2, warnings: [] });
  await writeSampleDir(join(root, "s3"), { records: 60, seed: 3, warnings: ["a <b>warning</b> & more"] });
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every <svg> with its width and height attributes. */
function svgs(html: string): { w: number; h: number }[] {
  return [...html.matchAll(/<svg\b[^>]*\bwidth="([\d.]+)"[^>]*\bheight="([\d.]+)"/g)].map((m) => ({ w: Number(m[1]), h: Number(m[2]) }));
}

/** The page must not reach for anything outside itself. */
function expectSelfContained(html: string) {
  expect(html).not.toMatch(/<script\b[^>]*\bsrc=/i);
  expect(html).not.toMatch(/<link\b/i);
  expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:|\/\/|file:)/i);
  expect(html).not.toMatch(/url\(\s*["']?(https?:|\/\/)/i);
  expect(html).not.toMatch(/@import/i);
  const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
  expect(new Set(ids).size).toBe(ids.length);
}

describe("one run", () => {
  test("the page has the run, the calls, every chart as a non-empty SVG, the warnings", async () => {
    const { html, charts, data } = await buildReport([join(root, "s1")]);
    expect(charts).toEqual(["chart-calls", "chart-frame-scores", "chart-window-scores", "chart-along", "chart-tokens", "chart-time"]);
    for (const id of charts) expect(html).toMatch(new RegExp(`<figure class="chart" id="${id}"[^>]*><h3>[^<]+</h3><svg`));
    const sizes = svgs(html);
    expect(sizes.length).toBe(charts.length);
    for (const s of sizes) {
      expect(s.w).toBeGreaterThan(100);
      expect(s.h).toBeGreaterThan(50);
    }
    expectSelfContained(html);
    // run facts from run.json
    expect(html).toContain("ab".repeat(32)); // input sha256
    expect(html).toContain("cd".repeat(32)); // model sha256
    expect(html).toContain("0.0.0-test");
    expect(html).toContain("cpu (test)");
    expect(html).toContain("record 3 of /data/sample.fa has an empty sequence: skipped");
    // counts as printed
    const d = data[0];
    expect(html).toContain(`${d.sequences.total} sequences, ${d.windows.total.toLocaleString("en-US")} windows`);
    // the top sequences are named in the along-sequence chart
    for (const t of d.top) expect(html).toContain(t.id);
  }, 30_000);

  test("text from run.json is escaped", async () => {
    const { html } = await buildReport([join(root, "s3")]);
    expect(html).toContain("a &lt;b&gt;warning&lt;/b&gt; &amp; more");
    expect(html).not.toContain("<b>warning</b>");
  }, 30_000);

  test("size stays bounded on a large run (aggregated, top N, binned windows)", async () => {
    const big = join(root, "big");
    await writeSampleDir(big, { records: 200, seed: 9, longEvery: 10, longWindows: 1500, parts: 3000 });
    const { html, data } = await buildReport([big]);
    expect(data[0].windows.total).toBeGreaterThan(30_000);
    expect(data[0].top.length).toBe(10);
    for (const t of data[0].top) expect(t.points.length).toBeLessThanOrEqual(200);
    expect(html.length).toBeLessThan(1_000_000);
    expectSelfContained(html);
  }, 120_000);

  test("a run without records still gives a page (empty charts, no top sequences)", async () => {
    const empty = join(root, "empty");
    await writeSampleDir(empty, { records: 0, parts: 0 });
    const { html, charts, data } = await buildReport([empty]);
    expect(data[0].sequences.total).toBe(0);
    expect(charts).toEqual(["chart-calls", "chart-frame-scores", "chart-window-scores"]);
    expect(html).toContain("No sequence has a window with a kept frame.");
    expect(html).toContain("no per-part telemetry");
    expectSelfContained(html);
  });

  test("writeReport writes DIR/report.html; with onError a failure is a message, not a throw", async () => {
    const p = await writeReport(join(root, "s2"));
    expect(p).toBe(join(root, "s2", "report.html"));
    expect(readFileSync(p!, "utf8")).toStartWith("<!DOCTYPE html>");
    const msgs: string[] = [];
    expect(await writeReport(join(root, "missing"), { onError: (m) => msgs.push(m) })).toBeNull();
    expect(msgs.length).toBe(1);
    expect(msgs[0]).toContain("report.html not written");
    expect(writeReport(join(root, "missing"))).rejects.toThrow("is not a directory");
  }, 30_000);
});

describe("cohort", () => {
  test("several directories make one page with a row per sample", async () => {
    const dirs = ["s1", "s2", "s3"].map((s) => join(root, s));
    const { html, charts, data } = await buildReport(dirs);
    expect(charts).toEqual(["chart-cohort-calls", "chart-cohort-window-scores", "chart-along"]);
    expect(svgs(html).length).toBe(3);
    for (const d of data) expect(html).toContain(`<td class="mono">${d.name}</td>`);
    expect(html).toContain("3 samples");
    expectSelfContained(html);
  }, 30_000);

  test("many samples: one pooled histogram instead of a line each; the page stays small", async () => {
    const one = await collectRun(join(root, "s2"));
    const many = Array.from({ length: 60 }, (_, i) => ({ ...one, dir: `/runs/sample${i}`, name: `sample${i}` }));
    const charts = await cohortCharts(many);
    expect(charts.map((c) => c.id)).toEqual(["chart-cohort-calls", "chart-cohort-window-scores", "chart-along"]);
    expect(charts[1].title).toContain("pooled");
    const html = cohortPage(many, charts, "test");
    for (let i = 0; i < 60; i++) expect(html).toContain(`>sample${i}<`);
    expect(html.length).toBeLessThan(1_000_000);
    expectSelfContained(html);
    // up to MAX_LINES samples: one line per sample
    const few = await cohortCharts(many.slice(0, MAX_LINES));
    expect(few[1].title).toContain("per sample");
  });

  test("virnuc report DIR... -o FILE; one clear error for bad use", async () => {
    const out = join(root, "cohort.html");
    const r = runCli(["report", join(root, "s1"), join(root, "s2"), "-o", out]);
    expect(r.stderr).toContain("wrote");
    expect(r.code).toBe(0);
    expect(readFileSync(out, "utf8")).toContain("virnuc cohort report: 2 samples");
    const many = runCli(["report", join(root, "s1"), join(root, "s2")]);
    expect(many.code).toBe(1);
    expect(many.stderr.trim()).toBe("virnuc: error: report: several directories make one cohort page: say where with -o FILE");
    const bad = runCli(["report", join(root, "nope")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n").length).toBe(1);
    expect(bad.stderr).toContain("is not a directory");
    expect(reportCommand([join(root, "s1")], { output: root })).rejects.toThrow("is a directory");
  }, 60_000);
});

describe("predict", () => {
  test("leaves report.html (from the run's own files); --no-report skips it", () => {
    tinyModels();
    const fa = join(REFERENCE, "virnucpro", "test_with_orfs.fa");
    const a = join(root, "pa");
    const r = runCli(["predict", fa, "-o", a, "--chunk-size", "300", "--no-progress", ...modelArgs()]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("warning");
    const html = readFileSync(join(a, "report.html"), "utf8");
    expect(html).toContain("virnuc report: pa");
    expect(html).toContain('id="chart-along"');
    expect(html).toContain('id="chart-time"');
    const run = JSON.parse(readFileSync(join(a, "run.json"), "utf8"));
    expect(run.warnings).toEqual([]);
    expect(typeof run.virnuc.version).toBe("string");
    const b = join(root, "pb");
    expect(runCli(["predict", fa, "-o", b, "--chunk-size", "300", "--no-progress", "--no-report", ...modelArgs()]).code).toBe(0);
    expect(existsSync(join(b, "run.json"))).toBe(true);
    expect(existsSync(join(b, "report.html"))).toBe(false);
  }, 120_000);
});

describe("nameSamples", () => {
  test("base names, with parent folders only where needed to tell samples apart", async () => {
    const { nameSamples } = await import("./report.ts");
    const d = [{ dir: "/runs/s1/out", name: "" }, { dir: "/runs/s2/out", name: "" }];
    nameSamples(d);
    expect(d.map((x) => x.name)).toEqual(["s1/out", "s2/out"]);
    const e = [{ dir: "/runs/a", name: "" }, { dir: "/runs/b", name: "" }];
    nameSamples(e);
    expect(e.map((x) => x.name)).toEqual(["a", "b"]);
    const same = [{ dir: "/x", name: "" }, { dir: "/x", name: "" }];
    nameSamples(same);
    expect(same.map((x) => x.name)).toEqual(["x", "x"]);
  });
});
