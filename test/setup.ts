/**
 * Preloaded by `bun test` (bunfig.toml): the default per-test and per-hook timeout. Bun's own
 * default (5 s) is too short for the end-to-end tests on a busy or slow machine, and bunfig
 * has no key for it.
 */
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(120_000);
