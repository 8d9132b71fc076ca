/** The two VirNucPro classifier files and the git blob ids that identify their published bytes. */

export interface ClassifierRelease {
  file: "300_model.pth" | "500_model.pth";
  chunkSize: 300 | 500;
  /** git blob SHA-1 in Li-Jing-1997/VirNucPro (spec §1.5). */
  gitBlobSha1: string;
}

export const CLASSIFIER_RELEASES: readonly ClassifierRelease[] = [
  { file: "300_model.pth", chunkSize: 300, gitBlobSha1: "a0b5b85e7c1e44f00cde146d091beb82b2c8e855" },
  { file: "500_model.pth", chunkSize: 500, gitBlobSha1: "fc35d5ef9f1f4564eea7036f34f4f8ec6000d33d" },
];

export const DEFAULT_GITHUB_BASE = "https://raw.githubusercontent.com/Li-Jing-1997/VirNucPro/main";

export function classifierForChunkSize(chunkSize: number): ClassifierRelease | undefined {
  return CLASSIFIER_RELEASES.find((c) => c.chunkSize === chunkSize);
}

export function classifierByFile(name: string): ClassifierRelease | undefined {
  return CLASSIFIER_RELEASES.find((c) => c.file === name);
}
