// Shared by the oracle implementations: reading an item's oracle fields with messages that name
// the item and the field, and grading many completions on a pool of threads.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "oracles/oracle.h"

namespace align {

// fields[key], or InputError "<where>: missing oracle field "key" (the <oracle> oracle needs it)".
const nlohmann::json& require_field(const nlohmann::json& fields, const std::string& key,
                                    const std::string& where, const std::string& oracle);

// InputError "<where>: oracle field "key": expected <expected>, found <value>".
[[noreturn]] void field_type_error(const std::string& where, const std::string& key,
                                   const std::string& expected, const nlohmann::json& found);

// A string field, or a number written as JSON writes it (72, 0.5); else field_type_error.
std::string answer_text(const nlohmann::json& value, const std::string& where,
                        const std::string& key);

// oracle.grade() for every completion on up to `threads` threads (1 = in this thread). The first
// exception thrown by a grade() is rethrown here after all threads have stopped.
std::vector<bool> grade_in_parallel(const Oracle& oracle,
                                    const std::vector<std::string>& completions,
                                    const nlohmann::json& fields, size_t threads);

// std::thread::hardware_concurrency(), at least 2.
size_t default_grading_threads();

}  // namespace align
