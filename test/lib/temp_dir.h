// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with everything in it when
// the object is destroyed. For tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace stategate::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/stategate-test-XXXXXX";
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace stategate::testing
