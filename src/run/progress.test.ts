import { describe, expect, test } from "bun:test";
import { Progress } from "./progress.ts";
import { newReadSummary } from "../fasta/reader.ts";

describe("Progress: share of the input read", () => {
  test("bytes read over the inputs' sizes; unknown for a stream", () => {
    const read = newReadSummary();
    const p = new Progress({ enabled: false });
    expect(p.inputFraction()).toBeNull();
    p.trackInput(() => read, [{ bytes: 600 }, { bytes: 400 }]);
    read.inputs.push({ path: "a", stream: false, compression: "none", format: "fasta", bytes: 600, sha256: null, records: 3 });
    read.inputs.push({ path: "b", stream: false, compression: "none", format: "fasta", bytes: 150, sha256: null, records: 1 });
    expect(p.inputFraction()).toBe(0.75);
    const s = new Progress({ enabled: false });
    s.trackInput(() => read, [{ bytes: 600 }, { bytes: -1 }]);
    expect(s.inputFraction()).toBeNull();
  });

  test("lines go to stderr uncoloured (no console.error, which paints a terminal's text red)", async () => {
    const code = `import { Progress } from ${JSON.stringify(import.meta.dir + "/progress.ts")};
      const p = new Progress({ enabled: true }); p.start(0); p.stage("loading"); p.finish();`;
    const r = Bun.spawnSync([process.execPath, "-e", code], { stderr: "pipe", env: { ...process.env, FORCE_COLOR: "1" } });
    const err = r.stderr.toString();
    expect(err).toContain("virnuc: loading\n");
    expect(err).toMatch(/virnuc: 0 reads, 0 frames in \d+\.\d s\n/);
    expect(err).not.toContain("\x1b[31m");
  });
});
