// Placeholder until the native library lands: builds libvirnuc with CMake (see cuda/).
import { existsSync } from "node:fs";
if (!existsSync("cuda/CMakeLists.txt")) {
  console.log("libvirnuc: no cuda/CMakeLists.txt yet, nothing to build");
}
