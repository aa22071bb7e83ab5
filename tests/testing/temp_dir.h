// A fresh temporary directory per test, removed (recursively) on destruction.
// Not thread-safe; own one per test.
#ifndef TRIALMATCH_TESTING_TEMP_DIR_H_
#define TRIALMATCH_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace trialmatch::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "trialmatch-test-XXXXXX")
            .string();
    char* made = ::mkdtemp(tmpl.data());
    path_ = made != nullptr ? std::filesystem::path(made)
                            : std::filesystem::path();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path File(const std::string& name) const {
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace trialmatch::testing

#endif  // TRIALMATCH_TESTING_TEMP_DIR_H_
