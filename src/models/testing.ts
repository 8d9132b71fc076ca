/** Helpers shared by the model tests: temporary folders and checkpoint variants built from random models. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toFloat32 } from "./dtype.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import type { HostTensor } from "./tensor.ts";

export function tempDir(prefix: string): { path: string; sub: (name: string) => string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `virnuc-${prefix}-`));
  return {
    path,
    sub: (name) => {
      const p = join(path, name);
      mkdirSync(p, { recursive: true });
      return p;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

/** The tensors of a safetensors file, copied out of the mapping (so the file may be replaced). */
export function readCopy(path: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of readSafetensors(path).tensors) out.set(k, { ...t, shape: [...t.shape], data: t.data.slice() });
  return out;
}

/** Write a variant of a state dict: names mapped (undefined drops the tensor), optional config.json. */
export function writeVariant(
  dir: string,
  tensors: Map<string, HostTensor>,
  rename: (name: string) => string | undefined,
  config?: unknown,
): string {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of tensors) {
    const n = rename(k);
    if (n !== undefined) out.set(n, t);
  }
  writeSafetensors(join(dir, "model.safetensors"), out);
  if (config !== undefined) writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

export function values(t: HostTensor | undefined): number[] {
  if (!t) throw new Error("tensor missing");
  return Array.from(toFloat32(t));
}

export function sameBytes(a: HostTensor | undefined, b: HostTensor | undefined): boolean {
  if (!a || !b || a.data.byteLength !== b.data.byteLength) return false;
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
    Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
  );
}
