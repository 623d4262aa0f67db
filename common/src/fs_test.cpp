// SPDX-License-Identifier: Apache-2.0
#include "ferry/common/fs.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

namespace {

TEST(Fs, AtomicWriteReplacesWholeFileAndLeavesNoTemp) {
  char tmpl[] = "/tmp/ferry-fs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/a/b/file";
  ASSERT_TRUE(ferry::fs::make_dirs(ferry::fs::dirname(path)));
  ASSERT_TRUE(ferry::fs::write_file_atomic(path, std::string("first version")));
  ASSERT_TRUE(ferry::fs::write_file_atomic(path, std::string("second")));
  auto text = ferry::fs::read_file(path);
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "second");
  struct stat st {};
  EXPECT_NE(::stat((path + ".tmp").c_str(), &st), 0);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Fs, ReadMissingFileNamesThePath) {
  auto r = ferry::fs::read_file("/nonexistent/ferry/file");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("/nonexistent/ferry/file"), std::string::npos);
  EXPECT_NE(r.error().message().find("No such file"), std::string::npos);
}

}  // namespace
