// SPDX-License-Identifier: Apache-2.0
// restore_tree: a checkpointed process tree recreated top-down with the same pids, parent links,
// process groups, sessions and fds shared with the parent; nothing runs before all is rebuilt.
//
// Algorithm:
//   0. validate every image (unless the caller did); each member's parent must come before it.
//   1. One gadget address G free in the live layout and in EVERY image (each process is a fork
//      of the previous bootstrap child, so all of them carry G); per process an AddressPlan
//      against the live layout plus G, with G imposed.
//   2. The root: spawned like restore_process does (opt.spawner or a fork of ours), seized
//      (exit-kill). setsid()/setpgid(0,0) if it led its session/group at checkpoint.
//   3. Every other member, in order, while its parent is still the untouched bootstrap child
//      or a fresh fork of one: the parent gets PTRACE_O_TRACEFORK and runs clone3 through G
//      (exit_signal SIGCHLD, set_tid = {pid} with opt.same_tids, the id in the job's PID
//      namespace); the child is auto-attached from its first instruction (PTRACE_EVENT_FORK
//      gives its id, its PTRACE_EVENT_STOP is adopted). It inherits G, the all-blocked signal
//      mask and fds 0-2 (what the launch gave the whole tree), and runs setsid() when it led a
//      session, setpgid(0,0) when it led a group, setpgid(0,pgid) when it was in another group
//      than its parent.
//   3b. Zombies (exited children the parent had not reaped, from the parent's image): the
//      parent's SIGCHLD goes to SIG_DFL, it forks the child as in 3 (same id), the child runs
//      exit_group(code) or kill(self, sig) and is detached; once it is a zombie, the parent's
//      SIGCHLD it queued is dequeued (pending signals come back from the image later).
//   3c. Pipes and FIFOs between processes (tree_fds_restore.hpp): each created once in the
//      process whose image holds it, refilled, and every end placed at its fd in every process.
//   4. Pre-PONR of every process (restore_process step 3), parents first; then for a child each
//      {fd, parent_fd} it shared with its parent: pidfd_open(getppid()) + pidfd_getfd(parent_fd)
//      + dup3 onto fd (keeping its FD_CLOEXEC): one open file description with one offset again;
//      then each SharedFd (a description of an earlier process, or a dup within the process).
//   5. PONR and after for every process (restore_process steps 4-6): all are left stopped.
//   6. Only when every process is complete: disarm the watchdogs and detach, children before
//      parents, each process's threads before its leader. Any failure before: SIGKILL every
//      process created, children first, collecting each traced thread; errc::restore_failed
//      after a PONR, the step's own error before.
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "restore/restore.hpp"
#include "restore/restore_internal.hpp"
#include "restore/steps.hpp"
#include "restore/time_namespace.hpp"
#include "restore/timers_restore.hpp"
#include "restore/tree_fds_restore.hpp"

namespace ferry::restore {

namespace {

struct CloneArgs {  // struct clone_args, version 2 (include/uapi/linux/sched.h), 88 bytes
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
  uint64_t set_tid, set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88);
constexpr uint64_t kCloneArgsOff = 512;  // scratch-page offsets (the page is free before pre-PONR)
constexpr uint64_t kSetTidOff = kCloneArgsOff + 128;

template <typename T>
std::span<const std::byte> bytes_of(const T& v) {
  return {reinterpret_cast<const std::byte*>(&v), sizeof v};
}

struct Live {
  pid_t pid = -1;  // in our namespace
  std::unique_ptr<ptrace::Tracee> t;
  std::unique_ptr<ChildBuilder> b;
  std::vector<ptrace::Tracee> others;  // threads 1..n-1 once created
  std::unique_ptr<detail::Watchdog> dog;
};

std::string proc_name(const TreeProcess& m) { return "process " + std::to_string(m.pid); }

// setsid / setpgid as recorded, by remote calls in the process itself.
Result<void> restore_group(ChildBuilder& b, const TreeProcess& m, const TreeProcess* parent) {
  if (m.sid != 0 && m.sid == m.pid && (!parent || parent->sid != m.sid)) {
    FERRY_TRY_VOID(b.call("setsid in " + proc_name(m), SYS_setsid));
    return {};
  }
  if (m.pgid != 0 && m.pgid == m.pid && (!parent || parent->pgid != m.pgid)) {
    FERRY_TRY_VOID(b.call("setpgid(0, 0) in " + proc_name(m), SYS_setpgid, {0, 0}));
    return {};
  }
  if (parent && m.pgid != 0 && m.pgid != parent->pgid)
    FERRY_TRY_VOID(b.call("setpgid(0, " + std::to_string(m.pgid) + ") in " + proc_name(m), SYS_setpgid,
                          {0, static_cast<uint64_t>(m.pgid)}));
  return {};
}

// The child takes over its parent's open file descriptions at the recorded numbers.
Result<void> take_shared_fds(ChildBuilder& b, const TreeProcess& m) {
  if (m.shared_fds.empty()) return {};
  FERRY_TRY(ppid, b.call("getppid in " + proc_name(m), SYS_getppid));
  FERRY_TRY(pidfd, b.call("pidfd_open of the parent of " + proc_name(m), SYS_pidfd_open, {ppid, 0}));
  for (auto [fd, pfd] : m.shared_fds) {
    const std::string what = "fd " + std::to_string(fd) + " of " + proc_name(m) + " (parent's fd " +
                             std::to_string(pfd) + ")";
    FERRY_TRY(got, b.call("pidfd_getfd for " + what, SYS_pidfd_getfd, {pidfd, static_cast<uint64_t>(pfd), 0}));
    auto fl = b.call("fcntl(F_GETFD) for " + what, SYS_fcntl, {static_cast<uint64_t>(fd), F_GETFD});
    uint64_t cloexec = fl && (*fl & FD_CLOEXEC) ? O_CLOEXEC : 0;
    auto d = b.call("dup3 for " + what, SYS_dup3, {got, static_cast<uint64_t>(fd), cloexec});
    (void)b.call("close temporary fd", SYS_close, {got});
    if (!d) return fail(d.error());
  }
  FERRY_TRY_VOID(b.call("close pidfd", SYS_close, {pidfd}));
  return {};
}

}  // namespace

Result<pid_t> restore_tree(const std::vector<TreeProcess>& members, const RestoreOptions& opt) {
  if (members.empty()) return fail(errc::image_corrupt, "restore: the process tree is empty");
  const size_t n = members.size();
  std::vector<size_t> parent(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (!members[i].src) return fail(errc::image_corrupt, "restore: no image for " + proc_name(members[i]));
    if (opt.validate) {
      if (auto v = validate_for_restore(*members[i].src, opt); !v)
        return fail(v.error().wrap("restore " + proc_name(members[i])));
    }
    if (members[i].src->image().threads.empty())
      return fail(errc::image_corrupt, "restore " + proc_name(members[i]) + ": the image has no thread");
    if (i == 0) continue;
    bool found = false;
    for (size_t j = 0; j < i && !found; ++j)
      if (members[j].pid == members[i].ppid) parent[i] = j, found = true;
    if (!found)
      return fail(errc::image_corrupt, "restore " + proc_name(members[i]) + ": its parent " +
                                           std::to_string(members[i].ppid) + " is not restored before it");
  }
  std::vector<detail::TreeSlot> slots;
  for (const auto& m : members) slots.push_back({m.src, m.pid, nullptr, -1});
  if (auto r = detail::check_tree_fds(slots); !r) return fail(r.error());
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  FERRY_TRY(maps, read_maps(opt.spawner ? opt.spawner->layout_pid() : 0));
  std::vector<Range> busy;
  for (const auto& e : maps) busy.push_back(e.range);
  for (const auto& m : members)
    for (const auto& r : m.src->image().regions) busy.push_back({r.start, r.end});
  const uint64_t gadget = find_free(busy, kGadgetPages * page, page);
  if (gadget == 0) return fail(errc::address_conflict, "restore: no room for the restore gadget in every process");
  auto live = maps;
  live.push_back({{gadget, gadget + kGadgetPages * page}, ""});
  std::vector<AddressPlan> plans;
  for (const auto& m : members) {
    auto p = plan_addresses(m.src->image().regions, live, page);
    if (!p) return fail(p.error().wrap("restore " + proc_name(m)));
    p->gadget = gadget;
    plans.push_back(std::move(*p));
  }
  if (opt.log) opt.log("restore: " + std::to_string(n) + " processes, gadget at " + hex(gadget));

  if (!opt.spawner) FERRY_TRY_VOID(prepare_time_namespace(members[0].src->image(), opt.log));
  std::vector<std::unique_ptr<Live>> procs;
  std::vector<std::unique_ptr<Live>> zombies;  // recreated zombies still traced (until they exit)
  bool past_ponr = false;
  auto abort_all = [&](const Error& e) {
    for (auto& z : zombies) {
      if (z->dog) z->dog->disarm();
      if (!z->t || z->t->tid() < 0) continue;  // already detached and exited: its parent's
      z->t->release();
      detail::kill_and_reap(z->pid);
    }
    for (size_t i = procs.size(); i-- > 0;) {
      auto& l = *procs[i];
      if (l.dog) l.dog->disarm();
      if (l.t) l.t->release();
      detail::kill_all(l.pid, l.others);
    }
    if (past_ponr) return fail(errc::restore_failed, "restore (after the point of no return, processes killed): " + e.message());
    return fail(e);
  };

  // 2. The root.
  {
    Result<pid_t> spawned = opt.spawner ? opt.spawner->spawn(members[0].pid, gadget, page)
                                        : detail::spawn_child(gadget, page);
    if (!spawned) return fail(spawned.error());
    auto l = std::make_unique<Live>();
    l->pid = *spawned;
    l->dog = std::make_unique<detail::Watchdog>(l->pid, opt.timeout);
    auto seized = ptrace::Tracee::seize(l->pid, /*exit_kill=*/true);
    if (!seized) {
      l->dog->disarm();
      detail::kill_and_reap(l->pid);
      return fail(seized.error().wrap("seize restore child " + std::to_string(l->pid)));
    }
    l->t = std::make_unique<ptrace::Tracee>(std::move(*seized));
    l->b = std::make_unique<ChildBuilder>(*l->t, gadget, page);
    procs.push_back(std::move(l));
    if (auto r = restore_group(*procs[0]->b, members[0], nullptr); !r) return abort_all(r.error());
  }

  // A new child of `par` with id `want` (clone3 set_tid), adopted into `into` (also when the
  // call fails half-way, so that abort_all kills it).
  auto fork_in = [&](Live& par, pid_t want, const std::string& what,
                     std::vector<std::unique_ptr<Live>>& into) -> Result<Live*> {
    if (auto r = par.t->set_options(PTRACE_O_EXITKILL | PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE); !r)
      return fail(r.error().wrap(what));
    CloneArgs args{};
    args.exit_signal = SIGCHLD;
    auto st = par.b->put(bytes_of(want), kSetTidOff);
    if (!st) return fail(st.error().wrap(what));
    if (opt.same_tids) {
      args.set_tid = *st;
      args.set_tid_size = 1;
    }
    auto at = par.b->put(bytes_of(args), kCloneArgsOff);
    if (!at) return fail(at.error().wrap(what));
    auto got = par.b->call(what + " (clone3" + (opt.same_tids ? " set_tid)" : ")"), SYS_clone3, {*at, sizeof args});
    auto cloned = par.t->take_cloned();
    const size_t before = into.size();
    for (pid_t c : cloned) {  // adopt whatever was created, so a failure kills it too
      auto l = std::make_unique<Live>();
      l->pid = c;
      l->dog = std::make_unique<detail::Watchdog>(c, opt.timeout);
      auto t = ptrace::Tracee::adopt(c);
      if (!t) {
        into.push_back(std::move(l));
        return fail(t.error().wrap("attach new child " + std::to_string(want)));
      }
      l->t = std::make_unique<ptrace::Tracee>(std::move(*t));
      l->b = std::make_unique<ChildBuilder>(*l->t, gadget, page);
      into.push_back(std::move(l));
    }
    if (!got) return fail(got.error());
    if (cloned.size() != 1 || into.size() != before + 1)
      return fail(errc::restore_failed, what + ": no fork event from the parent");
    if (opt.same_tids && static_cast<pid_t>(*got) != want)
      return fail(errc::restore_failed, what + ": the kernel gave id " + std::to_string(*got));
    return into.back().get();
  };

  // 3. Every other process, forked by its parent.
  for (size_t i = 1; i < n; ++i) {
    const auto& m = members[i];
    Live& par = *procs[parent[i]];
    const std::string what = "create " + proc_name(m) + " in its parent " + std::to_string(members[parent[i]].pid);
    auto child = fork_in(par, m.pid, what, procs);
    if (!child) return abort_all(child.error());
    if (procs.size() != i + 1) return abort_all(Error(errc::restore_failed, what + ": unexpected children"));
    if (auto r = restore_group(*procs[i]->b, m, &members[parent[i]]); !r) return abort_all(r.error());
  }
  // 3b. Zombies, forked by their parent, exited at once.
  for (size_t i = 0; i < n; ++i) {
    for (const auto& z : members[i].src->image().zombies) {
      Live& par = *procs[i];
      const std::string what = "recreate exited child " + std::to_string(z.pid) + " of " + proc_name(members[i]);
      if (auto r = detail::default_sigchld(*par.b); !r) return abort_all(r.error().wrap(what));
      auto child = fork_in(par, z.pid, what, zombies);
      if (!child) return abort_all(child.error());
      TreeProcess as_member{nullptr, z.pid, members[i].pid, z.pgid, z.sid, {}};
      if (auto r = restore_group(*(*child)->b, as_member, &members[i]); !r) return abort_all(r.error().wrap(what));
      if (auto r = detail::exit_as_zombie(*(*child)->t, *(*child)->b, z); !r) return abort_all(r.error().wrap(what));
      (*child)->dog->disarm();
      if (auto r = detail::drop_sigchld(*par.b); !r) return abort_all(r.error().wrap(what));
    }
  }
  if (opt.log && !zombies.empty()) opt.log("restore: recreated " + std::to_string(zombies.size()) + " exited children");
  // 3c. Pipes between processes (and within one).
  for (size_t i = 0; i < n; ++i) {
    slots[i].b = procs[i]->b.get();
    slots[i].live_pid = procs[i]->pid;
  }
  if (auto r = detail::restore_pipes(slots, opt); !r) return abort_all(r.error().wrap("restore pipes"));
  if (opt.log) opt.log("restore: created " + std::to_string(n) + " processes");

  // 4. Pre-PONR, parents first; shared fds once the parent has its own.
  for (size_t i = 0; i < n; ++i) {
    if (auto r = detail::pre_ponr(*procs[i]->b, *members[i].src, plans[i], page, opt); !r)
      return abort_all(r.error().wrap("restore " + proc_name(members[i])));
    if (auto r = take_shared_fds(*procs[i]->b, members[i]); !r)
      return abort_all(r.error().wrap("restore " + proc_name(members[i])));
    if (auto r = detail::take_tree_shared_fds(slots, i); !r)
      return abort_all(r.error().wrap("restore " + proc_name(members[i])));
  }

  if (opt.before_ponr)
    if (auto r = opt.before_ponr(); !r) return abort_all(r.error());

  // 5. PONR and after.
  past_ponr = true;
  for (size_t i = 0; i < n; ++i) {
    auto& l = *procs[i];
    const auto& img = members[i].src->image();
    auto post = [&]() -> Result<void> {
      FERRY_TRY_VOID(tear_down_and_place(*l.b, img, plans[i], page, opt));
      const bool drop_caps = opt.spawner && opt.spawner->spawned_child_drops_capabilities();
      FERRY_TRY_VOID(create_threads(*l.b, img, opt.same_tids, l.others, drop_caps));
      FERRY_TRY_VOID(restore_timers_and_signals(*l.b, img, l.others));
      if (drop_caps) FERRY_TRY_VOID(drop_capabilities(*l.b));
      FERRY_TRY_VOID(finish_thread(*l.b, img, gadget, page));
      return {};
    }();
    if (!post) return abort_all(post.error().wrap("restore " + proc_name(members[i])));
  }

  // 6. Everything is complete: let it run, children before parents.
  bool fired = false;
  for (auto& l : procs) fired = l->dog->disarm() || fired;
  if (fired)
    return abort_all(Error(errc::restore_failed, "restore timed out after " + std::to_string(opt.timeout.count()) + " s"));
  for (size_t i = procs.size(); i-- > 0;) {
    auto& l = *procs[i];
    for (auto& o : l.others) {
      pid_t tid = o.tid();
      if (auto r = o.detach(); !r)
        return abort_all(Error(errc::restore_failed, "detach thread " + std::to_string(tid) + ": " + r.error().message()));
    }
    if (auto r = l.t->detach(); !r) return abort_all(r.error().wrap("detach " + proc_name(members[i])));
  }
  if (opt.log) opt.log("restore: process tree of " + std::to_string(n) + " running (root " + std::to_string(procs[0]->pid) + ")");
  return procs[0]->pid;
}

}  // namespace ferry::restore
