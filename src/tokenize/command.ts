/**
 * `virnuc tokenize --model esm|dnabert [--tokenizer FILE] [FILE|-]`: one sequence per input line,
 * one line of space-separated token ids out, in order. A debugging aid and the parity harness.
 */
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../util/errors.ts";
import { BpeTokenizer } from "./bpe.ts";
import { EsmTokenizer } from "./esm.ts";

/** Output is written in chunks of about this many characters. */
const FLUSH_CHARS = 1 << 20;

export async function tokenizeCommand(
  file: string | undefined,
  opts: { model?: string; tokenizer?: string; dnabert?: string },
): Promise<void> {
  const encode = await loadTokenizer(opts);
  const input = openInput(file);

  let out: string[] = [];
  let pending = 0;
  const emit = async (line: string) => {
    const ids = encode(line.endsWith("\r") ? line.slice(0, -1) : line).join(" ");
    out.push(ids, "\n");
    pending += ids.length + 1;
    if (pending >= FLUSH_CHARS) {
      await Bun.write(Bun.stdout, out.join(""));
      out = [];
      pending = 0;
    }
  };

  const decoder = new TextDecoder("utf-8");
  let carry = "";
  for await (const chunk of input) {
    const text = carry + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      await emit(text.slice(start, nl));
      start = nl + 1;
    }
    carry = text.slice(start);
  }
  carry += decoder.decode();
  // A final line without a newline still counts; the empty remainder after a last newline does not.
  if (carry !== "") await emit(carry);
  if (pending > 0) await Bun.write(Bun.stdout, out.join(""));
}

type Encode = (s: string) => Int32Array;

async function loadTokenizer(opts: { model?: string; tokenizer?: string; dnabert?: string }): Promise<Encode> {
  const model = opts.model?.toLowerCase();
  if (model === undefined || model === "") throw new UserError("tokenize: --model is required (esm or dnabert)");
  if (model === "esm") {
    const tok = opts.tokenizer ? EsmTokenizer.fromVocabFile(opts.tokenizer) : EsmTokenizer.default();
    return (s) => tok.encode(s);
  }
  if (model === "dnabert") {
    let path = opts.tokenizer;
    if (!path) {
      const { resolveModel } = await import("../models/hub/resolve.ts");
      const found = await resolveModel("dnabert", opts.dnabert, {});
      path = join(isDirectory(found) ? found : dirname(found), "tokenizer.json");
    }
    const tok = BpeTokenizer.fromFile(path);
    return (s) => tok.encode(s);
  }
  throw new UserError(`tokenize: unknown --model ${opts.model} (use esm or dnabert)`);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The input as a byte stream: FILE, or stdin for `-` / no argument. */
function openInput(file: string | undefined): AsyncIterable<Uint8Array> {
  if (file === undefined || file === "-") return Bun.stdin.stream();
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`tokenize: cannot read ${file}: ${code === "ENOENT" ? "no such file" : (code ?? (err as Error).message)}`);
  }
  if (st.isDirectory()) throw new UserError(`tokenize: ${file} is a directory; give a file with one sequence per line`);
  return Bun.file(file).stream();
}
