#include "rollout/paged_kv_cache.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "common/error.h"

namespace align {

PagedKvCache::PagedKvCache(const ModelConfig& config, int64_t num_pages, int64_t page_size,
                           torch::ScalarType dtype, torch::Device device)
    : longrope_(config.rope_type == RopeType::kLongrope),
      num_pages_(num_pages),
      page_size_(page_size) {
  if (num_pages <= 0 || page_size <= 0) {
    throw InputError("PagedKvCache: num_pages and page_size must be positive, got " +
                     std::to_string(num_pages) + " and " + std::to_string(page_size));
  }
  auto options = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    k.push_back(at::zeros({num_pages, page_size, config.num_kv_heads, config.head_dim}, options));
    v.push_back(at::zeros({num_pages, page_size, config.num_kv_heads, config.head_dim}, options));
  }
  refs_.assign(static_cast<size_t>(num_pages), 0);
  for (int64_t p = num_pages - 1; p >= 0; --p)
    free_.push_back(p);  // page 0 is taken first
}

PagedKvCache::Sequence& PagedKvCache::get(int64_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) throw Error("PagedKvCache: no sequence " + std::to_string(seq));
  return it->second;
}

const PagedKvCache::Sequence& PagedKvCache::get(int64_t seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) throw Error("PagedKvCache: no sequence " + std::to_string(seq));
  return it->second;
}

int64_t PagedKvCache::take_page() {
  if (free_.empty()) throw Error("PagedKvCache: out of pages");
  const int64_t page = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(page)] = 1;
  return page;
}

void PagedKvCache::drop_page(int64_t page) {
  int64_t& r = refs_.at(static_cast<size_t>(page));
  if (r <= 0) throw Error("PagedKvCache: page " + std::to_string(page) + " released twice");
  if (--r == 0) free_.push_back(page);
}

int64_t PagedKvCache::create(bool long_rope) {
  if (long_rope && !longrope_) {
    throw Error("PagedKvCache::create: long-factor keys asked of a model without longrope");
  }
  Sequence s;
  s.long_rope = long_rope;
  seqs_.emplace(next_id_, std::move(s));
  return next_id_++;
}

int64_t PagedKvCache::fork(int64_t seq) {
  Sequence child = get(seq);
  child.allocated = 0;
  for (int64_t p : child.pages)
    ++refs_[static_cast<size_t>(p)];
  seqs_.emplace(next_id_, std::move(child));
  return next_id_++;
}

void PagedKvCache::release(int64_t seq) {
  Sequence& s = get(seq);
  for (int64_t p : s.pages)
    drop_page(p);
  seqs_.erase(seq);
}

void PagedKvCache::truncate(int64_t seq, int64_t length) {
  Sequence& s = get(seq);
  if (length < 0 || length > s.length) {
    throw Error("PagedKvCache::truncate: length " + std::to_string(length) + " outside [0, " +
                std::to_string(s.length) + "]");
  }
  const size_t keep = static_cast<size_t>(pages_for(length));
  for (size_t i = keep; i < s.pages.size(); ++i)
    drop_page(s.pages[i]);
  s.pages.resize(keep);
  s.length = length;
}

int64_t PagedKvCache::pages_to_append(int64_t seq, int64_t n) const {
  const Sequence& s = get(seq);
  const bool cow = s.length % page_size_ != 0 && refs_[static_cast<size_t>(s.pages.back())] > 1;
  return (cow ? 1 : 0) + pages_for(s.length + n) - static_cast<int64_t>(s.pages.size());
}

int64_t PagedKvCache::pages_to_append(
    const std::vector<std::pair<int64_t, int64_t>>& appends) const {
  int64_t pages = 0;
  std::unordered_map<int64_t, int64_t> partial;  // shared partial last page -> appending rows
  for (const auto& [seq, n] : appends) {
    const Sequence& s = get(seq);
    pages += pages_for(s.length + n) - static_cast<int64_t>(s.pages.size());
    if (s.length % page_size_ != 0) ++partial[s.pages.back()];
  }
  for (const auto& [page, rows] : partial)  // each copy drops a reference; the last holder keeps it
    pages += std::min(rows, refs_[static_cast<size_t>(page)] - 1);
  return pages;
}

void PagedKvCache::append(int64_t seq, int64_t n) {
  if (n < 0) throw Error("PagedKvCache::append: negative token count");
  const int64_t need = pages_to_append(seq, n);
  if (need > free_pages()) {
    throw Error("PagedKvCache: sequence " + std::to_string(seq) + " needs " + std::to_string(need) +
                " more pages, " + std::to_string(free_pages()) + " of " +
                std::to_string(num_pages_) + " are free");
  }
  Sequence& s = get(seq);
  if (s.length % page_size_ != 0 && refs_[static_cast<size_t>(s.pages.back())] > 1) {
    const int64_t old_page = s.pages.back();
    const int64_t new_page = take_page();
    for (size_t l = 0; l < k.size(); ++l) {
      k[l][new_page].copy_(k[l][old_page]);
      v[l][new_page].copy_(v[l][old_page]);
    }
    drop_page(old_page);
    s.pages.back() = new_page;
    ++s.allocated;
  }
  s.length += n;
  while (static_cast<int64_t>(s.pages.size()) < pages_for(s.length)) {
    s.pages.push_back(take_page());
    ++s.allocated;
  }
}

int64_t PagedKvCache::length(int64_t seq) const {
  return get(seq).length;
}

bool PagedKvCache::long_rope(int64_t seq) const {
  return get(seq).long_rope;
}

const std::vector<int64_t>& PagedKvCache::page_table(int64_t seq) const {
  return get(seq).pages;
}

int64_t PagedKvCache::allocated(int64_t seq) const {
  return get(seq).allocated;
}

int64_t PagedKvCache::slot(int64_t seq, int64_t t) const {
  const Sequence& s = get(seq);
  if (t < 0 || t >= s.length) {
    throw Error("PagedKvCache::slot: token " + std::to_string(t) + " outside a sequence of " +
                std::to_string(s.length));
  }
  return s.pages[static_cast<size_t>(t / page_size_)] * page_size_ + t % page_size_;
}

torch::Tensor PagedKvCache::block_tables(const std::vector<int64_t>& seqs) const {
  size_t width = 1;
  for (int64_t seq : seqs)
    width = std::max(width, get(seq).pages.size());
  std::vector<int32_t> flat(seqs.size() * width, 0);
  for (size_t b = 0; b < seqs.size(); ++b) {
    const auto& pages = get(seqs[b]).pages;
    for (size_t i = 0; i < pages.size(); ++i)
      flat[b * width + i] = static_cast<int32_t>(pages[i]);
  }
  auto table = at::tensor(flat, at::kInt)
                   .view({static_cast<int64_t>(seqs.size()), static_cast<int64_t>(width)});
  return table.to(k.empty() ? at::Device(at::kCPU) : k[0].device());
}

torch::Tensor PagedKvCache::lengths(const std::vector<int64_t>& seqs) const {
  std::vector<int32_t> out;
  for (int64_t seq : seqs)
    out.push_back(static_cast<int32_t>(get(seq).length));
  return at::tensor(out, at::kInt).to(k.empty() ? at::Device(at::kCPU) : k[0].device());
}

}  // namespace align
