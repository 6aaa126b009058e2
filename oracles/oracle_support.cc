#include "oracles/oracle_support.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "common/error.h"

namespace align {

const nlohmann::json& require_field(const nlohmann::json& fields, const std::string& key,
                                    const std::string& where, const std::string& oracle) {
  if (!fields.is_object() || !fields.contains(key)) {
    throw InputError((where.empty() ? "" : where + ": ") + "missing oracle field \"" + key +
                     "\" (the " + oracle + " oracle needs it)");
  }
  return fields.at(key);
}

void field_type_error(const std::string& where, const std::string& key, const std::string& expected,
                      const nlohmann::json& found) {
  std::string shown = found.dump();
  if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
  throw InputError((where.empty() ? "" : where + ": ") + "oracle field \"" + key + "\": expected " +
                   expected + ", found " + shown);
}

std::string answer_text(const nlohmann::json& value, const std::string& where,
                        const std::string& key) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number()) return value.dump();
  field_type_error(where, key, "a number or a string", value);
}

std::vector<bool> grade_in_parallel(const Oracle& oracle,
                                    const std::vector<std::string>& completions,
                                    const nlohmann::json& fields, size_t threads) {
  std::vector<char> verdicts(completions.size(), 0);
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    for (size_t i = next++; i < completions.size(); i = next++) {
      try {
        verdicts[i] = oracle.grade(completions[i], fields) ? 1 : 0;
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = completions.size();
      }
    }
  };
  const size_t count = std::min(threads, completions.size());
  if (count <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < count; ++t)
      pool.emplace_back(work);
    for (std::thread& thread : pool)
      thread.join();
  }
  if (failure) std::rethrow_exception(failure);
  return std::vector<bool>(verdicts.begin(), verdicts.end());
}

size_t default_grading_threads() {
  return std::max<size_t>(2, std::thread::hardware_concurrency());
}

}  // namespace align
