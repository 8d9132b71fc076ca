/**
 * `bun bench [mode] [flags]` (also `virnuc bench`): host | engine | e2e | packing.
 * Benchmarks are measurements, never tests: results go to bench/results/ with the machine and date.
 */
export async function runBench(mode: string, args: string[]): Promise<void> {
  switch (mode) {
    case "host": {
      const { hostBench } = await import("./host.ts");
      await hostBench(args);
      return;
    }
    case "engine": {
      const { engineBench } = await import("./engine.ts");
      await engineBench(args);
      return;
    }
    case "e2e": {
      const { e2eBench } = await import("./e2e.ts");
      await e2eBench(args);
      return;
    }
    case "packing": {
      const { packingBench } = await import("./packing.ts");
      await packingBench(args);
      return;
    }
    default:
      console.error(`virnuc bench: unknown mode '${mode}' (host | engine | e2e | packing)`);
      process.exit(2);
  }
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const mode = argv[0] && !argv[0].startsWith("-") ? argv.shift()! : "host";
  await runBench(mode, argv);
}
