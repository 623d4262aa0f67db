// SPDX-License-Identifier: Apache-2.0
// User namespace helpers of PidNamespace (see user_namespace.hpp; facts: restore-facts §6.1,
// user_namespaces(7)). The maps are written by the creator, which is the only process the
// kernel lets write them unprivileged: it must be in the parent namespace and map only its
// own effective uid/gid, and gid_map needs setgroups "deny" first.
#include "launch/user_namespace.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ferry/common/fs.hpp"
#include "ferry/common/unique_fd.hpp"

namespace ferry::launch {

namespace {

Result<void> write_proc(pid_t pid, const char* file, const std::string& text) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return fail_errno("write '" + text.substr(0, text.size() - 1) + "' to " + path);
  return {};
}

// The value of a sysctl file, or "" when it does not exist on this kernel.
std::string sysctl_value(const char* path) {
  auto text = fs::read_file(path);
  if (!text) return "";
  std::string v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

}  // namespace

bool can_own_pid_namespace() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return ::geteuid() == 0;
  return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

Result<void> map_own_ids(pid_t child) {
  const std::string uid = std::to_string(::geteuid()), gid = std::to_string(::getegid());
  FERRY_TRY_VOID(write_proc(child, "uid_map", uid + " " + uid + " 1\n"));
  FERRY_TRY_VOID(write_proc(child, "setgroups", "deny\n"));
  FERRY_TRY_VOID(write_proc(child, "gid_map", gid + " " + gid + " 1\n"));
  return {};
}

std::string user_namespace_refusal(int err) {
  const std::string clone_sysctl = sysctl_value("/proc/sys/kernel/unprivileged_userns_clone");
  const std::string max_sysctl = sysctl_value("/proc/sys/user/max_user_namespaces");
  std::string why = std::strerror(err);
  switch (err) {
    case EPERM:
      if (clone_sysctl == "0") return why + ": unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)";
      return why + ": user namespaces are not allowed here (a seccomp filter, a chroot, or a security module)";
    case ENOSPC:
      if (max_sysctl == "0") return why + ": user namespaces are disabled (user.max_user_namespaces = 0)";
      return why + ": the limit on user namespaces is reached (user.max_user_namespaces = " +
             (max_sysctl.empty() ? "?" : max_sysctl) + ", or a parent namespace's own limit)";
    case EUSERS:
      return why + ": user namespaces are nested 32 deep already";
    case EINVAL:
      return why + ": this kernel has no user namespaces (CONFIG_USER_NS)";
    default:
      return why;
  }
}

}  // namespace ferry::launch
