// Thread-local last error behind vn_last_error() (vn::fail in backend.h sets it).
#pragma once

#include <string>

#include "virnuc.h"

namespace vn {

const char* last_error();
void clear_error();

// Shape as "[a, b]" for error messages.
template <typename It>
std::string shape_str(It begin, It end) {
  std::string s = "[";
  for (It it = begin; it != end; ++it) {
    if (it != begin) s += ", ";
    s += std::to_string(*it);
  }
  return s + "]";
}

}  // namespace vn
