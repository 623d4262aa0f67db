// SPDX-License-Identifier: Apache-2.0
// Address-space planning for restore: pure functions over ranges (see address_plan.hpp).
#include "restore/address_plan.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>

#include "ferry/common/fs.hpp"

namespace ferry::restore {

using image::RegionKind;

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::vector<MapEntry> parse_maps(std::string_view text) {
  std::vector<MapEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string line(text.substr(pos, eol - pos));
    pos = eol + 1;
    unsigned long long s = 0, e = 0;
    int name_at = -1;
    // start-end perms offset dev inode [name]
    if (std::sscanf(line.c_str(), "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &name_at) < 2) continue;
    MapEntry m;
    m.range = {s, e};
    if (name_at > 0 && static_cast<size_t>(name_at) < line.size()) m.name = line.substr(name_at);
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<MapEntry>> read_maps(int pid) {
  std::string path = pid == 0 ? "/proc/self/maps" : "/proc/" + std::to_string(pid) + "/maps";
  auto text = fs::read_file(path);
  if (!text) return fail(text.error().wrap("read address space"));
  return parse_maps(*text);
}

bool is_special(RegionKind kind) noexcept {
  return kind == RegionKind::vdso || kind == RegionKind::vvar || kind == RegionKind::vvar_vclock ||
         kind == RegionKind::vsyscall;
}

Range VdsoTriple::span() const noexcept {
  Range r{~uint64_t{0}, 0};
  for (const Range* p : {&vvar, &vvar_vclock, &vdso}) {
    if (p->size() == 0) continue;
    r.start = std::min(r.start, p->start);
    r.end = std::max(r.end, p->end);
  }
  if (r.end == 0) return {};
  return r;
}

VdsoTriple live_vdso(const std::vector<MapEntry>& maps) {
  VdsoTriple t;
  for (const auto& m : maps) {
    if (m.name == "[vvar]") t.vvar = m.range;
    else if (m.name == "[vvar_vclock]") t.vvar_vclock = m.range;
    else if (m.name == "[vdso]") t.vdso = m.range;
  }
  return t;
}

VdsoTriple image_vdso(const std::vector<image::Region>& regions) {
  VdsoTriple t;
  for (const auto& r : regions) {
    Range rr{r.start, r.end};
    if (r.kind == RegionKind::vvar) t.vvar = rr;
    else if (r.kind == RegionKind::vvar_vclock) t.vvar_vclock = rr;
    else if (r.kind == RegionKind::vdso) t.vdso = rr;
  }
  return t;
}

namespace {

// Sorted, merged copy of busy, clipped to the user range.
std::vector<Range> normalise(std::vector<Range> busy) {
  std::sort(busy.begin(), busy.end(), [](const Range& a, const Range& b) { return a.start < b.start; });
  std::vector<Range> out;
  for (const auto& r : busy) {
    if (r.size() == 0 || r.start >= kTaskSize) continue;
    if (!out.empty() && r.start <= out.back().end) out.back().end = std::max(out.back().end, r.end);
    else out.push_back(r);
  }
  return out;
}

uint64_t search(const std::vector<Range>& busy, uint64_t from, uint64_t need) {
  uint64_t cand = from;
  for (const auto& b : busy) {
    if (b.end <= cand) continue;
    if (b.start >= cand + need) break;
    cand = b.end;
  }
  if (cand + need <= kTaskSize && cand + need > cand) return cand;
  return 0;
}

}  // namespace

uint64_t find_free(const std::vector<Range>& busy, uint64_t len, uint64_t page) {
  auto norm = normalise(busy);
  uint64_t need = len + 2 * page;  // guard page below and above
  uint64_t at = search(norm, kPlanHint, need);
  if (at == 0) at = search(norm, kMinPlanAddr, need);
  return at == 0 ? 0 : at + page;
}

Result<AddressPlan> plan_addresses(const std::vector<image::Region>& regions,
                                   const std::vector<MapEntry>& live, uint64_t page) {
  std::vector<Range> live_ranges;
  for (const auto& m : live) live_ranges.push_back(m.range);
  auto live_norm = normalise(live_ranges);

  // Everything either layout uses; every spot we hand out is added too.
  std::vector<Range> busy = live_ranges;
  for (const auto& r : regions) busy.push_back({r.start, r.end});

  AddressPlan plan;
  auto take = [&](uint64_t len, const std::string& what) -> Result<uint64_t> {
    uint64_t at = find_free(busy, len, page);
    if (at == 0)
      return fail(errc::address_conflict, "plan address space: no free range of " + hex(len) +
                                              " bytes for " + what);
    busy.push_back({at, at + len});
    return at;
  };

  FERRY_TRY(gadget, take(kGadgetPages * page, "the syscall gadget"));
  plan.gadget = gadget;

  plan.build_addr.assign(regions.size(), 0);
  plan.staged.assign(regions.size(), false);
  for (size_t i = 0; i < regions.size(); ++i) {
    const auto& r = regions[i];
    if (is_special(r.kind)) continue;
    Range rr{r.start, r.end};
    bool clash = std::any_of(live_norm.begin(), live_norm.end(),
                             [&](const Range& l) { return l.overlaps(rr); });
    if (!clash) {
      plan.build_addr[i] = r.start;
      continue;
    }
    FERRY_TRY(at, take(rr.size(), "staging region " + hex(r.start) + "-" + hex(r.end)));
    plan.build_addr[i] = at;
    plan.staged[i] = true;
  }

  VdsoTriple lv = live_vdso(live), iv = image_vdso(regions);
  if (lv.present() && iv.present() && lv.span().overlaps(iv.span()) && !(lv.span() == iv.span())) {
    FERRY_TRY(at, take(lv.span().size(), "parking the vdso"));
    plan.vdso_temp = at;
  }
  return plan;
}

Result<std::vector<Move>> plan_vdso_moves(const VdsoTriple& live, const VdsoTriple& target,
                                          uint64_t temp) {
  std::vector<Move> out;
  struct Part {
    const char* name;
    Range from, to;
  };
  Part parts[] = {{"[vvar]", live.vvar, target.vvar},
                  {"[vvar_vclock]", live.vvar_vclock, target.vvar_vclock},
                  {"[vdso]", live.vdso, target.vdso}};
  for (const auto& p : parts) {
    if (p.from.size() != p.to.size())
      return fail(errc::vdso_mismatch, std::string("move ") + p.name + ": live size " +
                                           hex(p.from.size()) + " differs from the image's " +
                                           hex(p.to.size()));
  }
  Range ls = live.span(), ts = target.span();
  if (ls.size() == 0 || ls == ts) return out;
  for (const auto& p : parts) {
    if (p.to.size() != 0 && p.to.start - ts.start != p.from.start - ls.start)
      return fail(errc::vdso_mismatch, std::string("move ") + p.name +
                                           ": the image's vdso layout differs from the live one");
  }
  bool via_temp = ls.overlaps(ts);
  if (via_temp && temp == 0)
    return fail(errc::address_conflict, "move vdso: source and target overlap and no parking spot");
  for (const auto& p : parts) {
    if (p.from.size() == 0) continue;
    uint64_t to = via_temp ? temp + (p.from.start - ls.start) : p.to.start;
    out.push_back({p.from.start, p.from.size(), to, std::string(p.name) + (via_temp ? " (park)" : "")});
  }
  if (via_temp) {
    for (const auto& p : parts) {
      if (p.from.size() == 0) continue;
      out.push_back({temp + (p.from.start - ls.start), p.from.size(), p.to.start, p.name});
    }
  }
  return out;
}

std::vector<Range> subtract(const std::vector<Range>& mapped, std::vector<Range> keep) {
  keep = normalise(std::move(keep));
  std::vector<Range> out;
  for (Range m : normalise(mapped)) {
    uint64_t cur = m.start;
    for (const auto& k : keep) {
      if (k.end <= cur) continue;
      if (k.start >= m.end) break;
      if (k.start > cur) out.push_back({cur, k.start});
      cur = std::max(cur, k.end);
      if (cur >= m.end) break;
    }
    if (cur < m.end) out.push_back({cur, m.end});
  }
  return out;
}

Result<std::vector<PageWrite>> plan_page_writes(const std::vector<image::PageRun>& runs,
                                                const std::vector<image::Region>& regions,
                                                const std::vector<uint64_t>& build_addr,
                                                uint64_t page) {
  std::vector<PageWrite> out;
  for (const auto& run : runs) {
    uint64_t addr = run.addr, end = run.addr + run.npages * page;
    // Built for an error only: a chain's top image has one run per 64 KiB changed, 16k of them.
    auto what = [&] { return "page run " + hex(run.addr) + "+" + std::to_string(run.npages) + " pages"; };
    if (addr % page != 0 || end < addr)
      return fail(errc::image_corrupt, "check " + what() + ": not page aligned");
    while (addr < end) {
      // regions are sorted; find the one holding addr
      auto it = std::upper_bound(regions.begin(), regions.end(), addr,
                                 [](uint64_t a, const image::Region& r) { return a < r.start; });
      if (it == regions.begin() || std::prev(it)->end <= addr)
        return fail(errc::image_corrupt, "check " + what() + ": address " + hex(addr) +
                                             " lies in no region");
      const auto& r = *std::prev(it);
      size_t idx = static_cast<size_t>(std::prev(it) - regions.begin());
      if (is_special(r.kind) || r.kind == image::RegionKind::file_shared)
        return fail(errc::image_corrupt, "check " + what() + ": region " + hex(r.start) + "-" +
                                             hex(r.end) + " (" + r.name + ") stores no page bytes");
      uint64_t piece_end = std::min(end, r.end);
      uint64_t base = idx < build_addr.size() ? build_addr[idx] : r.start;
      out.push_back({addr, base + (addr - r.start), piece_end - addr});
      addr = piece_end;
    }
  }
  return out;
}

std::vector<size_t> plan_huge_regions(const std::vector<image::Region>& regions,
                                      const std::vector<PageWrite>& writes,
                                      const std::vector<bool>& staged) {
  // Bytes written into each 2 MiB window (writes never cross regions; a window may).
  std::map<uint64_t, uint64_t> filled;
  for (const auto& w : writes) {
    for (uint64_t a = w.image_addr, end = w.image_addr + w.len; a < end;) {
      uint64_t win = a / kHugePage * kHugePage;
      uint64_t n = std::min(end, win + kHugePage) - a;
      filled[win] += n;
      a += n;
    }
  }
  std::vector<bool> dense(regions.size(), false);
  for (const auto& [win, bytes] : filled) {
    if (bytes < kHugePage / 4 * 3) continue;
    auto it = std::upper_bound(regions.begin(), regions.end(), win,
                               [](uint64_t a, const image::Region& r) { return a < r.start; });
    if (it == regions.begin()) continue;
    --it;
    if (it->start <= win && it->end >= win + kHugePage) dense[static_cast<size_t>(it - regions.begin())] = true;
  }
  std::vector<size_t> out;
  for (size_t i = 0; i < regions.size(); ++i) {
    auto k = regions[i].kind;
    bool anon = k == RegionKind::anon_private || k == RegionKind::heap;
    if (dense[i] && anon && !(i < staged.size() && staged[i])) out.push_back(i);
  }
  return out;
}

}  // namespace ferry::restore
