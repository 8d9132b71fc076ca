/**
 * The VirNucPro classifier head (Linear -> BatchNorm1d -> ReLU -> Dropout -> Linear) from its
 * whole-module pickle (torch.save(model) of __main__.MLPClassifier) or from a state dict.
 */
import { UserError } from "../util/errors.ts";
import { openCheckpoint } from "./checkpoint.ts";
import { type ClassifierModel, checkTensors, dim, type Expected } from "./layout.ts";
import { PyObject } from "./pickle.ts";
import type { ClassifierConfig, HostTensor } from "./tensor.ts";

export type { ClassifierModel } from "./layout.ts";

/** VirNucPro: 3328 features (DNABERT-S 768 + ESM-2 2560) -> 512 -> 2. */
export const VIRNUCPRO_CLASSIFIER = { inFeatures: 3328, hidden: 512, nClasses: 2 };

export function classifierExpected(c: ClassifierConfig): Expected[] {
  const U = c.hidden;
  return [
    { name: "hidden_layer.weight", shape: [U, c.inFeatures] },
    { name: "hidden_layer.bias", shape: [U] },
    { name: "bn1.weight", shape: [U] },
    { name: "bn1.bias", shape: [U] },
    { name: "bn1.running_mean", shape: [U] },
    { name: "bn1.running_var", shape: [U] },
    { name: "output_layer.weight", shape: [c.nClasses, U] },
    { name: "output_layer.bias", shape: [c.nClasses] },
  ];
}

/** BatchNorm eps as recorded in the pickled bn1 module, if the file is a whole-module pickle. */
function pickledBnEps(root: unknown): number | undefined {
  let mod = root;
  // nn.DataParallel wraps the model as its submodule "module"
  for (let i = 0; i < 3 && mod instanceof PyObject; i++) {
    const modules = mod.get("_modules");
    if (!(modules instanceof Map)) return undefined;
    const bn = modules.get("bn1");
    if (bn instanceof PyObject) {
      const eps = bn.get("eps");
      return typeof eps === "number" && eps > 0 ? eps : undefined;
    }
    mod = modules.get("module");
  }
  return undefined;
}

export function loadClassifier(path: string): ClassifierModel {
  const ckpt = openCheckpoint(path);
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of ckpt.tensors) tensors.set(name.replace(/^module\./, ""), t);
  const hidden = dim(tensors, "hidden_layer.weight", 0);
  const inFeatures = dim(tensors, "hidden_layer.weight", 1);
  const nClasses = dim(tensors, "output_layer.weight", 0);
  if (!hidden || !inFeatures || !nClasses) {
    throw new UserError(
      `${path}: not a VirNucPro classifier (needs hidden_layer.weight and output_layer.weight; found ${[...tensors.keys()].slice(0, 3).join(", ") || "no tensors"})`,
    );
  }
  const config: ClassifierConfig = { inFeatures, hidden, nClasses, bnEps: pickledBnEps(ckpt.root) ?? 1e-5 };
  return { config, tensors: checkTensors(path, "classifier", tensors, classifierExpected(config)), files: ckpt.files };
}
