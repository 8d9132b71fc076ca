/**
 * Opens a report from disk in the system's headless Chromium (Debian's `chromium`) through
 * puppeteer-core, with every request that is not a file: URL refused, and says what a reader
 * would meet: console errors, failed or refused requests, and each chart's size on screen.
 * Used by the browser test and by screenshot.ts (a dev tool: puppeteer-core is a devDependency).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import puppeteer, { type Browser } from "puppeteer-core";

export const CHROMIUM = process.env.VIRNUC_CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface BrowserCheck {
  consoleErrors: string[];
  /** requests that failed, and every non-file request (refused) */
  failedRequests: string[];
  /** every figure.chart: its id and its SVG's size on screen (0 x 0 when it has no SVG) */
  charts: { id: string; width: number; height: number }[];
  title: string;
}

export interface OpenOptions {
  /** also save a full-page PNG here */
  screenshot?: string;
  /** viewport width in CSS pixels (default 1100) */
  width?: number;
}

/** A headless Chromium with a fresh profile; close() ends it and removes the profile. */
export class Chromium {
  private constructor(
    private readonly browser: Browser,
    private readonly profile: string,
    private readonly timeout: number,
  ) {}

  static async launch(timeoutMs = 30_000): Promise<Chromium> {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set VIRNUC_CHROMIUM`);
    const profile = mkdtempSync(join(tmpdir(), "virnuc-chromium-"));
    try {
      const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        pipe: true,
        args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`],
        userDataDir: profile,
        timeout: timeoutMs,
        protocolTimeout: timeoutMs,
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
      });
      return new Chromium(browser, profile, timeoutMs);
    } catch (err) {
      rmSync(profile, { recursive: true, force: true });
      throw err;
    }
  }

  /** Open `htmlPath` from disk in a new page, with every non-file request refused, and check it. */
  async open(htmlPath: string, opts: OpenOptions = {}): Promise<BrowserCheck> {
    const timeout = this.timeout;
    const page = await this.browser.newPage();
    try {
      page.setDefaultTimeout(timeout);
      await page.setViewport({ width: opts.width ?? 1100, height: 900 });
      const consoleErrors: string[] = [];
      const failedRequests: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") consoleErrors.push(m.text());
      });
      page.on("pageerror", (e) => consoleErrors.push(String((e as Error)?.message ?? e)));
      page.on("requestfailed", (r) => failedRequests.push(`${r.url()} (${r.failure()?.errorText ?? "failed"})`));
      await page.setRequestInterception(true);
      page.on("request", (r) => {
        if (r.url().startsWith("file:")) void r.continue();
        else {
          failedRequests.push(`${r.url()} (refused: not a file)`);
          void r.abort("blockedbyclient");
        }
      });
      const res = await page.goto(pathToFileURL(resolve(htmlPath)).href, { waitUntil: "load", timeout });
      if (!res) throw new Error(`no response for ${htmlPath}`);
      const charts = await page.$$eval("figure.chart", (figs) =>
        figs.map((f) => {
          const svg = f.querySelector("svg");
          const r = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
          return { id: f.id, width: r.width, height: r.height };
        }),
      );
      const title = await page.title();
      if (opts.screenshot) await page.screenshot({ path: opts.screenshot as `${string}.png`, fullPage: true, type: "png" });
      return { consoleErrors, failedRequests, charts, title };
    } finally {
      await page.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    // Chromium may still hold the profile for a moment after close.
    rmSync(this.profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

/** Launch Chromium, open and check one page, close. */
export async function openReport(htmlPath: string, opts: OpenOptions = {}): Promise<BrowserCheck> {
  const c = await Chromium.launch();
  try {
    return await c.open(htmlPath, opts);
  } finally {
    await c.close();
  }
}
