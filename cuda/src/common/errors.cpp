#include "common/errors.h"

#include "backend.h"

namespace vn {

namespace {
thread_local std::string t_last_error;
}

vn_status fail(vn_status status, const std::string& message) {
  // One line: the TypeScript side prints it verbatim after "virnuc: error:".
  std::string line = message;
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  t_last_error = std::move(line);
  return status;
}

const char* last_error() { return t_last_error.c_str(); }

void clear_error() { t_last_error.clear(); }

}  // namespace vn
