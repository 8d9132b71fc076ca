import puppeteer from "puppeteer-core";
import { CHROMIUM_FLAGS } from "./browser.ts";
const b = await puppeteer.launch({ executablePath: "/usr/bin/chromium", headless: true, pipe: true, args: [...CHROMIUM_FLAGS, "--user-data-dir=/tmp/rep/prof2"] });
const p = await b.newPage();
await p.setViewport({ width: 1100, height: 900 });
await p.goto("file://" + process.argv[2]);
const ys = process.argv.slice(3).map(Number);
for (let i = 0; i < ys.length; i++) await p.screenshot({ path: `/tmp/rep/crop${i}.png`, clip: { x: 0, y: ys[i], width: 1100, height: 800 } });
await b.close();
