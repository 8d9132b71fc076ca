// Worker IPC: parts on the wire, and how the parent is told what kind of error ended a worker.
import { describe, expect, test } from "bun:test";
import { fromWire, toWire } from "./workers.ts";
import { errorKind } from "./worker.ts";
import { isPartRef, type PartRef } from "./shard-source.ts";
import { CancelledError, EngineError, NonFiniteError, OutOfMemoryError } from "../engine/engine.ts";
import { Status } from "../engine/ffi.ts";
import { UserError } from "../util/errors.ts";
import { RunStopped } from "./stop.ts";

describe("worker IPC", () => {
  test("a part survives the JSON wire byte for byte", () => {
    const seq = Uint8Array.from({ length: 256 }, (_, i) => i);
    const part = { index: 9, records: [{ id: "r\u00e9 1", seq, file: "/in.fa", line: 3, offset: -1, index: 41 }] };
    const back = fromWire(JSON.parse(JSON.stringify(toWire(part))));
    expect(back.index).toBe(9);
    if (isPartRef(back)) throw new Error("records came back as a descriptor");
    expect(back.records[0]).toEqual({ ...part.records[0], seq });
  });

  test("a part descriptor crosses the wire as it is, without records", () => {
    const ref: PartRef = {
      index: 4,
      first: 2800,
      count: 700,
      seek: { start: { fileIndex: 1, offset: 123456, index: 2000, line: 4001 }, skip: 800, block: { coffset: 9000, uoffset: 120000 } },
      inputs: [
        { path: "/a.fa", format: "plain", bytes: 10, mtimeMs: 1.5 },
        { path: "/b.fa.gz", format: "bgzf", bytes: 20, mtimeMs: 2.25 },
      ],
    };
    const wire = toWire(ref);
    expect("records" in wire).toBe(false);
    const back = fromWire(JSON.parse(JSON.stringify(wire)));
    expect(isPartRef(back)).toBe(true);
    expect(back).toEqual(ref);
  });

  test("error kinds are typed, never read from the message", () => {
    expect(errorKind(new UserError("out of memory in the CUDA device (only the words)"))).toBe("fatal");
    expect(errorKind(new NonFiniteError(3))).toBe("fatal");
    expect(errorKind(new OutOfMemoryError())).toBe("device");
    expect(errorKind(new EngineError("cuBLAS failure", Status.BACKEND))).toBe("device");
    expect(errorKind(new EngineError("bad shape", Status.INVALID))).toBe("fatal");
    expect(errorKind(new CancelledError())).toBe("stopped");
    expect(errorKind(new RunStopped("SIGTERM", "/out"))).toBe("stopped");
    expect(errorKind(new Error("anything else"))).toBe("fatal");
  });
});
