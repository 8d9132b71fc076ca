/** `virnuc models ...`: inspect and random here; list, resolve, verify and pull live in ./hub/. */
import { UserError } from "../util/errors.ts";

const ACTIONS = ["list", "resolve", "inspect", "verify", "pull", "random"];

export async function modelsCommand(action: string, args: string[], opts: Record<string, unknown>): Promise<void> {
  switch (action) {
    case "inspect": {
      if (args.length !== 1) throw new UserError("models inspect needs exactly one FILE or DIR");
      const { inspectModel } = await import("./inspect.ts");
      process.stdout.write(inspectModel(args[0]));
      return;
    }
    case "random":
      return randomCommand(args, opts);
    case "list":
      return (await import("./hub/commands.ts")).listCommand(args, opts);
    case "resolve":
      return (await import("./hub/commands.ts")).resolveCommand(args, opts);
    case "verify":
      return (await import("./hub/commands.ts")).verifyCommand(args, opts);
    case "pull":
      return (await import("./hub/commands.ts")).pullCommand(args, opts);
    default:
      throw new UserError(`unknown models action '${action}' (one of: ${ACTIONS.join(", ")})`);
  }
}

async function randomCommand(args: string[], opts: Record<string, unknown>): Promise<void> {
  const { RANDOM_ARCHS, writeRandomModel } = await import("./random.ts");
  if (args.length > 0) throw new UserError(`models random takes no positional arguments (got '${args[0]}'); use --arch and -o`);
  const arch = opts.arch;
  if (typeof arch !== "string" || !arch) {
    throw new UserError(`models random needs --arch NAME (one of: ${Object.keys(RANDOM_ARCHS).join(", ")})`);
  }
  const out = opts.output;
  if (typeof out !== "string" || !out) throw new UserError("models random needs -o DIR");
  const seed = Number(opts.seed ?? 1);
  const dtype = opts.dtype === undefined ? undefined : String(opts.dtype);
  if (dtype !== undefined && dtype !== "f32" && dtype !== "f16") throw new UserError(`--dtype must be f32 or f16, got '${dtype}'`);
  const tokenizer = typeof opts.tokenizer === "string" ? opts.tokenizer : undefined;
  const t0 = performance.now();
  writeRandomModel(arch, seed, out, { dtype, tokenizer, outliers: opts.outliers === true });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  process.stderr.write(`wrote random ${arch} (seed ${seed}) to ${out} in ${secs} s\n`);
}
