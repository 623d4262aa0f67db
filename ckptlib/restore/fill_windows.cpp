// SPDX-License-Identifier: Apache-2.0
// plan_fill_windows (algorithm in fill_windows.hpp).
#include "restore/fill_windows.hpp"

#include <algorithm>
#include <map>

namespace ferry::restore {

std::vector<FillWindow> plan_fill_windows(std::span<const FillPiece> pieces, uint64_t max_bytes) {
  std::vector<FillPiece> by_child(pieces.begin(), pieces.end());
  std::sort(by_child.begin(), by_child.end(),
            [](const FillPiece& a, const FillPiece& b) { return a.child_addr < b.child_addr; });
  std::map<uint32_t, uint64_t> next;  // per store: where its last piece ended
  for (const auto& p : by_child) {
    auto [it, fresh] = next.emplace(p.pos.store, 0);
    if (!fresh && p.pos.offset < it->second) return {};
    it->second = p.pos.offset + p.len;
  }
  std::vector<FillWindow> windows;
  for (FillPiece p : by_child) {
    while (p.len > 0) {
      if (windows.empty() || p.child_addr >= windows.back().child_base + max_bytes)
        windows.push_back({p.child_addr, 0, {}});
      FillWindow& w = windows.back();
      FillPiece q = p;
      q.len = std::min(p.len, w.child_base + max_bytes - p.child_addr);
      w.pieces.push_back(q);
      w.size = q.child_addr + q.len - w.child_base;
      p.image_addr += q.len;
      p.child_addr += q.len;
      p.pos.offset += q.len;
      p.len -= q.len;
    }
  }
  for (auto& w : windows)
    std::sort(w.pieces.begin(), w.pieces.end(), [](const FillPiece& a, const FillPiece& b) {
      return a.pos.store != b.pos.store ? a.pos.store < b.pos.store : a.pos.offset < b.pos.offset;
    });
  return windows;
}

}  // namespace ferry::restore
