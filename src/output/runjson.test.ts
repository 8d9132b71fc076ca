import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readRunJson, toStableJson, writeRunJson } from "./runjson.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test("run.json is pretty, key-sorted at every level and atomic", () => {
  const dir = mkdtempSync(join(tmpdir(), "virnuc-runjson-"));
  dirs.push(dir);
  const path = writeRunJson(dir, {
    version: "0.1.0",
    counts: { windows: 3, frames: 2n, records: 1 },
    inputs: [{ path: "b.fa", bytes: 10 }, { path: "a.fa", bytes: 5 }],
    throughput: { framesPerSecond: Infinity, seconds: NaN },
    devices: new Set(["cuda:0"]),
    timings: new Map([["embed", 1.5]]),
    shard: undefined,
    sizes: new Int32Array([1, 2]),
  });
  expect(path).toBe(join(dir, "run.json"));
  const text = readFileSync(path, "utf8");
  expect(text).toBe(
    [
      "{",
      '  "counts": {',
      '    "frames": 2,',
      '    "records": 1,',
      '    "windows": 3',
      "  },",
      '  "devices": [',
      '    "cuda:0"',
      "  ],",
      '  "inputs": [',
      "    {",
      '      "bytes": 10,',
      '      "path": "b.fa"',
      "    },",
      "    {",
      '      "bytes": 5,',
      '      "path": "a.fa"',
      "    }",
      "  ],",
      '  "sizes": [',
      "    1,",
      "    2",
      "  ],",
      '  "throughput": {',
      '    "framesPerSecond": null,',
      '    "seconds": null',
      "  },",
      '  "timings": {',
      '    "embed": 1.5',
      "  },",
      '  "version": "0.1.0"',
      "}",
      "",
    ].join("\n"),
  );
  expect(readRunJson(dir)).toEqual(JSON.parse(text));
  expect(readdirSync(dir)).toEqual(["run.json"]);
});

test("key order of the input does not matter", () => {
  const a = JSON.stringify(toStableJson({ b: 1, a: { y: [3, { d: 1, c: 2 }], x: 0 } }));
  const b = JSON.stringify(toStableJson({ a: { x: 0, y: [3, { c: 2, d: 1 }] }, b: 1 }));
  expect(a).toBe(b);
  expect(a).toBe('{"a":{"x":0,"y":[3,{"c":2,"d":1}]},"b":1}');
  expect(toStableJson(2n ** 64n)).toBe("18446744073709551616");
});
