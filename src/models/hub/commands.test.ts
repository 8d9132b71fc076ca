import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../../util/errors.ts";
import { listCommand, pullCommand, resolveCommand, verifyCommand, type CommandContext } from "./commands.ts";
import { FakeHub, fakeBytes, type FakeRepo } from "./fake-hub.ts";
import { gitBlobSha1, sha256 } from "./hash.ts";
import { silentProgress } from "./progress.ts";
import { verifyPath } from "./verify.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const ESM_COMMIT = "e".repeat(40);
const DNA_COMMIT = "d".repeat(40);
const ESM_WEIGHTS = fakeBytes(200_000, 1);
const DNA_WEIGHTS = fakeBytes(100_000, 2);
const CLS300 = fakeBytes(20_000, 3);
const CLS500 = fakeBytes(30_000, 4);

// The real default ids, served by the fake Hub.
const repos: FakeRepo[] = [
  {
    id: "facebook/esm2_t36_3B_UR50D",
    commit: ESM_COMMIT,
    files: [
      { path: "config.json", bytes: enc('{"model_type":"esm"}') },
      { path: "vocab.txt", bytes: enc("<cls>\n<pad>\n") },
      { path: "pytorch_model-00001-of-00001.bin", bytes: ESM_WEIGHTS, lfs: true },
      { path: "pytorch_model.bin.index.json", bytes: enc("{}") },
      { path: "tf_model.h5", bytes: fakeBytes(1000, 9), lfs: true },
    ],
  },
  {
    id: "zhihan1996/DNABERT-S",
    commit: DNA_COMMIT,
    files: [
      { path: "config.json", bytes: enc("{}") },
      { path: "tokenizer.json", bytes: enc('{"model":{}}') },
      { path: "bert_layers.py", bytes: enc("# remote code\n") },
      { path: "pytorch_model.bin", bytes: DNA_WEIGHTS, lfs: true },
    ],
  },
];
const classifierIds = { "300_model.pth": gitBlobSha1(CLS300), "500_model.pth": gitBlobSha1(CLS500) };

let hub: FakeHub;
let dir: string;
let ctx: CommandContext;
let out: string[];
let err: string[];

beforeAll(() => {
  hub = new FakeHub({ repos, github: { "300_model.pth": CLS300, "500_model.pth": CLS500 } }).start();
});
afterAll(() => hub.stop());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "virnuc-cmd-"));
  out = [];
  err = [];
  const cwd = join(dir, "work");
  mkdirSync(cwd);
  ctx = {
    env: { HOME: join(dir, "home"), HF_HOME: join(dir, "hf"), VIRNUC_HOME: join(dir, "virnuc") },
    cwd,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    progress: silentProgress,
    pull: { retryDelayMs: 1, classifierIds },
  };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const pullAll = () => pullCommand([], { endpoint: hub.url, github: `${hub.url}/gh` }, ctx);
const esmSnap = () => join(dir, "hf", "hub", "models--facebook--esm2_t36_3B_UR50D", "snapshots", ESM_COMMIT);
const dnaSnap = () => join(dir, "hf", "hub", "models--zhihan1996--DNABERT-S", "snapshots", DNA_COMMIT);

async function userError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error("expected a UserError");
}

describe("models pull / resolve", () => {
  test("pull with no ids fetches the four defaults; resolve then finds them all", async () => {
    await pullAll();
    expect(out).toEqual([
      `facebook/esm2_t36_3B_UR50D -> ${esmSnap()}  (4 file(s), 200 kB; 4 downloaded and verified)`,
      `zhihan1996/DNABERT-S -> ${dnaSnap()}  (3 file(s), 100 kB; 3 downloaded and verified)`,
      `300_model.pth -> ${join(dir, "virnuc", "classifiers", "300_model.pth")}  (1 file(s), 20.0 kB; 1 downloaded and verified)`,
      `500_model.pth -> ${join(dir, "virnuc", "classifiers", "500_model.pth")}  (1 file(s), 30.0 kB; 1 downloaded and verified)`,
    ]);
    out.length = 0;
    await resolveCommand([], { chunkSize: "300" }, ctx);
    expect(out).toEqual([
      `esm\t${esmSnap()}`,
      `dnabert\t${dnaSnap()}`,
      `classifier\t${join(dir, "virnuc", "classifiers", "300_model.pth")}`,
    ]);
    out.length = 0;
    await resolveCommand(["dnabert"], { chunkSize: 500 }, ctx);
    expect(out).toEqual([dnaSnap()]);
  });

  test("resolve with nothing downloaded: a UserError naming the pull command", async () => {
    const msg = await userError(resolveCommand([], { chunkSize: 500 }, ctx));
    expect(msg).toContain("virnuc models pull facebook/esm2_t36_3B_UR50D");
    expect(err.length).toBe(2);
    expect(await userError(resolveCommand(["weights"], {}, ctx))).toContain("expected esm, dnabert or classifier");
    expect(await userError(resolveCommand([], { chunkSize: "abc" }, ctx))).toContain("--chunk-size abc");
  });
});

describe("models verify", () => {
  test("everything OK after a pull; exit status zero", async () => {
    await pullAll();
    out.length = 0;
    await verifyCommand([], {}, ctx);
    expect(out.filter((l) => l.startsWith("OK")).length).toBe(4 + 3 + 2);
    expect(out).toContain(`OK        facebook/esm2_t36_3B_UR50D/pytorch_model-00001-of-00001.bin (sha256)`);
    expect(out).toContain(`OK        zhihan1996/DNABERT-S/config.json (git-sha1)`);
    expect(out.at(-1)).toBe("9 file(s) checked: 9 OK");
  });

  test("a damaged blob is a MISMATCH and a non-zero exit; a deleted blob is MISSING", async () => {
    await pullAll();
    const weights = join(esmSnap(), "pytorch_model-00001-of-00001.bin");
    const blob = resolve(esmSnap(), readlinkSync(weights));
    const bad = ESM_WEIGHTS.slice();
    bad[5] ^= 0x40;
    writeFileSync(blob, bad);
    out.length = 0;
    const msg = await userError(verifyCommand(["facebook/esm2_t36_3B_UR50D"], {}, ctx));
    expect(msg).toContain("1 file(s) failed verification");
    expect(out).toContain(
      `MISMATCH  facebook/esm2_t36_3B_UR50D/pytorch_model-00001-of-00001.bin (sha256): expected ${sha256(ESM_WEIGHTS)}, got ${sha256(bad)}`,
    );
    // DNABERT-S is still fine on its own
    out.length = 0;
    await verifyCommand(["zhihan1996/DNABERT-S"], {}, ctx);
    expect(out.at(-1)).toBe("3 file(s) checked: 3 OK");

    unlinkSync(resolve(dnaSnap(), readlinkSync(join(dnaSnap(), "pytorch_model.bin"))));
    const results = verifyPath(dnaSnap());
    expect(results.find((r) => r.file.endsWith("pytorch_model.bin"))!.status).toBe("MISSING");
  });

  test("classifiers by git blob id; a path argument works too", async () => {
    await pullCommand(["classifiers"], { github: `${hub.url}/gh` }, ctx);
    out.length = 0;
    await verifyCommand([join(dir, "virnuc", "classifiers", "500_model.pth")], {}, ctx);
    expect(out[0]).toBe(`OK        ${join(dir, "virnuc", "classifiers", "500_model.pth")} (git-sha1)`);
    // Against the real VirNucPro ids, the fake bytes do not pass.
    const real = { ...ctx, pull: undefined };
    out.length = 0;
    expect(await userError(verifyCommand(["300_model.pth"], {}, real))).toContain("failed verification");
    expect(out[0]).toStartWith("MISMATCH");
    expect(out[0]).toContain("expected a0b5b85e7c1e44f00cde146d091beb82b2c8e855");
  });

  test("unknown targets are errors", async () => {
    expect(await userError(verifyCommand(["org/absent"], {}, ctx))).toBe(
      "org/absent: not in the Hugging Face cache ~/../hf/hub: run `virnuc models pull org/absent`".replace("~/../hf/hub", join(dir, "hf", "hub")),
    );
  });
});

describe("models list", () => {
  test("lists snapshots with files and sizes, torch hub files, classifiers, and marks the defaults", async () => {
    await pullAll();
    const pt = join(dir, "home", ".cache", "torch", "hub", "checkpoints", "esm2_t33_650M_UR50D.pt");
    mkdirSync(join(pt, ".."), { recursive: true });
    writeFileSync(pt, new Uint8Array(2048));
    writeFileSync(join(dir, "hf", "hub", "models--zhihan1996--DNABERT-S", "blobs", "abc.incomplete"), new Uint8Array(1500));
    out.length = 0;
    await listCommand([], {}, ctx);
    const text = out.join("\n");
    expect(text).toContain(`  --esm         facebook/esm2_t36_3B_UR50D: ${esmSnap()}`);
    expect(text).toContain(`  facebook/esm2_t36_3B_UR50D\n    snapshot eeeeeeeeeeee (main)  4 files, 200 kB  <- default --esm`);
    expect(text).toMatch(/ {6}pytorch_model-00001-of-00001\.bin +200 kB/);
    expect(text).toContain("snapshot dddddddddddd (main)  3 files, 100 kB  <- default --dnabert");
    expect(text).toContain("1 interrupted download(s), 1.50 kB so far: `virnuc models pull zhihan1996/DNABERT-S` resumes");
    expect(text).toContain("  esm2_t33_650M_UR50D.pt  2.05 kB");
    expect(text).toContain("  ~/.cache/virnuc/classifiers/300_model.pth".replace("~/.cache/virnuc", join(dir, "virnuc")));
    expect(text).toContain("300_model.pth  20.0 kB  <- default (--chunk-size 300)");
    expect(text).not.toContain("tf_model.h5");
  });

  test("an empty machine: every default says how to get it", async () => {
    await listCommand([], {}, ctx);
    const text = out.join("\n");
    expect(text).toContain("--esm         facebook/esm2_t36_3B_UR50D: not found (`virnuc models pull facebook/esm2_t36_3B_UR50D`)");
    expect(text).toContain("--classifier  300_model.pth (--chunk-size 300): not found (`virnuc models pull 300_model.pth`)");
    expect(text).toContain("(no models)");
  });
});
