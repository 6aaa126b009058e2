#include "model/config.h"

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"

namespace align {
namespace {

using nlohmann::json;

std::string format_number(double x) {
  std::ostringstream out;
  out.precision(10);
  out << x;
  return out.str();
}

// Reads typed fields of one JSON object; every error names the file and the field path.
class FieldReader {
 public:
  FieldReader(const json& object, std::string source, std::string prefix = "")
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const json& found) const {
    throw InputError(source_ + ": field '" + path(key) + "': expected " + expected + ", found " +
                     found.dump());
  }
  std::string path(const std::string& key) const { return prefix_ + key; }

  // The value, or nullptr when the key is absent or null.
  const json* find(const std::string& key) const {
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::optional<int64_t> integer(const std::string& key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (std::abs(d) < 9e15 && d == std::floor(d)) return static_cast<int64_t>(d);
    }
    fail(key, "an integer", *v);
  }
  int64_t required_integer(const std::string& key) const {
    auto v = integer(key);
    if (!v) fail(key, "an integer", object_.contains(key) ? object_.at(key) : json("<absent>"));
    return *v;
  }
  std::optional<double> number(const std::string& key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(key, "a number", *v);
    return v->get<double>();
  }
  std::optional<std::string> string(const std::string& key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) fail(key, "a string", *v);
    return v->get<std::string>();
  }
  std::optional<bool> boolean(const std::string& key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) fail(key, "true or false", *v);
    return v->get<bool>();
  }
  std::optional<std::vector<double>> numbers(const std::string& key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    std::vector<double> out;
    if (!v->is_array()) fail(key, "a list of numbers", *v);
    for (const json& x : *v) {
      if (!x.is_number()) fail(key, "a list of numbers", *v);
      out.push_back(x.get<double>());
    }
    return out;
  }

 private:
  const json& object_;
  std::string source_;
  std::string prefix_;
};

// A value that may be spelled at top level (transformers 4) and inside the rope object
// (transformers 5): they must agree when both are present.
template <typename T>
std::optional<T> agree(const std::string& source, const std::string& top_name,
                       const std::optional<T>& top, const std::string& rope_name,
                       const std::optional<T>& rope) {
  if (top && rope && *top != *rope) {
    std::ostringstream msg;
    msg << source << ": fields '" << top_name << "' (" << *top << ") and '" << rope_name << "' ("
        << *rope << ") disagree; remove one or make them equal";
    throw InputError(msg.str());
  }
  return rope ? rope : top;
}

void parse_rope(const json& j, const std::string& source, ModelConfig& c) {
  FieldReader top(j, source);
  const json* scaling = top.find("rope_scaling");
  const json* params = top.find("rope_parameters");
  if (scaling && !scaling->is_object()) top.fail("rope_scaling", "an object or null", *scaling);
  if (params && !params->is_object()) top.fail("rope_parameters", "an object or null", *params);
  // transformers 5 prefers rope_scaling when both are given; accept both only when they agree.
  if (scaling && params) {
    for (const auto& [key, value] : scaling->items()) {
      if (params->contains(key) && params->at(key) != value && key != "type" &&
          key != "rope_type") {
        throw InputError(source + ": 'rope_scaling." + key + "' and 'rope_parameters." + key +
                         "' disagree; keep one of rope_scaling / rope_parameters");
      }
    }
  }
  const std::string name = scaling ? "rope_scaling" : "rope_parameters";
  static const json kEmpty = json::object();
  const json& rope_json = scaling ? *scaling : params ? *params : kEmpty;
  FieldReader rope(rope_json, source, name + ".");

  static const std::set<std::string> kKnown = {"rope_type",
                                               "type",
                                               "rope_theta",
                                               "partial_rotary_factor",
                                               "short_factor",
                                               "long_factor",
                                               "factor",
                                               "attention_factor",
                                               "original_max_position_embeddings"};
  for (const auto& item : rope_json.items()) {
    if (!kKnown.count(item.key())) {
      throw InputError(source + ": field '" + name + "." + item.key() +
                       "' is not a longrope or default RoPE parameter (unsupported RoPE variant)");
    }
  }

  auto type = agree<std::string>(source, name + ".type", rope.string("type"), name + ".rope_type",
                                 rope.string("rope_type"));
  std::string t = type.value_or("default");
  // Phi3Config maps the legacy names "su" and "yarn" to longrope.
  if (t == "su" || t == "yarn") t = "longrope";
  if (t == "default") {
    c.rope_type = RopeType::kDefault;
  } else if (t == "longrope") {
    c.rope_type = RopeType::kLongrope;
  } else {
    rope.fail("rope_type", "'default' or 'longrope' (the RoPE types Phi3 supports)", json(t));
  }

  c.rope_theta = agree<double>(source, "rope_theta", top.number("rope_theta"), name + ".rope_theta",
                               rope.number("rope_theta"))
                     .value_or(10000.0);
  c.partial_rotary_factor =
      agree<double>(source, "partial_rotary_factor", top.number("partial_rotary_factor"),
                    name + ".partial_rotary_factor", rope.number("partial_rotary_factor"))
          .value_or(1.0);

  auto top_orig = top.integer("original_max_position_embeddings");
  auto rope_orig = rope.integer("original_max_position_embeddings");
  agree<int64_t>(source, "original_max_position_embeddings", top_orig,
                 name + ".original_max_position_embeddings", rope_orig);
  if (top_orig) {
    c.original_max_position_embeddings = *top_orig;
  } else if (rope_orig && *rope_orig != 4096 && c.rope_type == RopeType::kLongrope) {
    // Phi3Config overwrites the nested value with its top-level field (default 4096).
    throw InputError(source + ": field '" + name +
                     ".original_max_position_embeddings' is ignored by transformers' Phi3Config, "
                     "which uses the top-level original_max_position_embeddings (default 4096); "
                     "set the top-level field to " +
                     std::to_string(*rope_orig));
  }

  if (c.rope_type == RopeType::kLongrope) {
    auto short_factor = rope.numbers("short_factor");
    auto long_factor = rope.numbers("long_factor");
    if (!short_factor) rope.fail("short_factor", "a list of numbers for longrope", json(nullptr));
    if (!long_factor) rope.fail("long_factor", "a list of numbers for longrope", json(nullptr));
    c.short_factor = *short_factor;
    c.long_factor = *long_factor;
    c.rope_factor = rope.number("factor");
    c.attention_factor = rope.number("attention_factor");
  }
}

[[noreturn]] void invalid(const std::string& source, const std::string& field,
                          const std::string& expected, const std::string& found) {
  throw InputError(source + ": field '" + field + "': expected " + expected + ", found " + found);
}

void require_positive(const std::string& source, const std::string& field, int64_t value) {
  if (value <= 0) invalid(source, field, "a positive integer", std::to_string(value));
}

}  // namespace

ModelConfig parse_model_config(const json& j, const std::string& source) {
  if (!j.is_object()) {
    throw InputError(source + ": expected a JSON object, found " + std::string(j.type_name()));
  }
  FieldReader r(j, source);
  auto model_type = r.string("model_type");
  if (model_type != "phi3") r.fail("model_type", "\"phi3\"", j.value("model_type", json()));
  if (const json* arch = r.find("architectures")) {
    if (*arch != json::array({"Phi3ForCausalLM"})) {
      r.fail("architectures", "[\"Phi3ForCausalLM\"]", *arch);
    }
  }

  ModelConfig c;
  c.vocab_size = r.required_integer("vocab_size");
  c.hidden_size = r.required_integer("hidden_size");
  c.intermediate_size = r.required_integer("intermediate_size");
  c.num_layers = r.required_integer("num_hidden_layers");
  c.num_heads = r.required_integer("num_attention_heads");
  c.num_kv_heads = r.integer("num_key_value_heads").value_or(c.num_heads);
  c.max_position_embeddings = r.required_integer("max_position_embeddings");
  c.rms_norm_eps = r.number("rms_norm_eps").value_or(1e-5);
  c.hidden_act = r.string("hidden_act").value_or("silu");
  c.sliding_window = r.integer("sliding_window").value_or(0);
  if (c.sliding_window == 0 && r.find("sliding_window")) {
    invalid(source, "sliding_window", "a positive integer or null", "0");
  }
  c.tie_word_embeddings = r.boolean("tie_word_embeddings").value_or(false);
  c.initializer_range = r.number("initializer_range").value_or(0.02);
  c.dtype =
      agree<std::string>(source, "torch_dtype", r.string("torch_dtype"), "dtype", r.string("dtype"))
          .value_or("float32");
  c.bos_token_id = r.integer("bos_token_id");
  c.pad_token_id = r.integer("pad_token_id");
  if (const json* eos = r.find("eos_token_id")) {
    if (eos->is_array()) {
      for (const json& id : *eos) {
        if (!id.is_number_integer()) r.fail("eos_token_id", "an integer or a list of them", *eos);
        c.eos_token_ids.push_back(id.get<int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(r.required_integer("eos_token_id"));
    }
  }
  parse_rope(j, source, c);
  validate_config(c, source);
  if (auto head_dim = r.integer("head_dim"); head_dim && *head_dim != c.head_dim) {
    invalid(source, "head_dim", "hidden_size / num_attention_heads = " + std::to_string(c.head_dim),
            std::to_string(*head_dim));
  }
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "config.json");
  if (!std::filesystem::exists(file)) {
    throw InputError(file + ": no such file (a model directory needs a config.json)");
  }
  ModelConfig config = parse_model_config(parse_json(read_file(file), file), file);
  const std::filesystem::path generation =
      std::filesystem::path(file).parent_path() / "generation_config.json";
  if (std::filesystem::exists(generation)) {
    const json g = parse_json(read_file(generation.string()), generation.string());
    const json* eos = g.is_object() && g.contains("eos_token_id") ? &g.at("eos_token_id") : nullptr;
    if (eos && !eos->is_null()) {
      for (const json& id : eos->is_array() ? *eos : json::array({*eos})) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0) {
          invalid(generation.string(), "eos_token_id", "a token id or a list of them", eos->dump());
        }
        config.generation_eos_token_ids.push_back(id.get<int64_t>());
      }
    }
  }
  return config;
}

void validate_config(ModelConfig& c, const std::string& source) {
  require_positive(source, "vocab_size", c.vocab_size);
  require_positive(source, "hidden_size", c.hidden_size);
  require_positive(source, "intermediate_size", c.intermediate_size);
  require_positive(source, "num_hidden_layers", c.num_layers);
  require_positive(source, "num_attention_heads", c.num_heads);
  require_positive(source, "num_key_value_heads", c.num_kv_heads);
  require_positive(source, "max_position_embeddings", c.max_position_embeddings);
  if (c.hidden_size % c.num_heads != 0) {
    invalid(source, "num_attention_heads",
            "a divisor of hidden_size " + std::to_string(c.hidden_size),
            std::to_string(c.num_heads));
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    invalid(source, "num_key_value_heads",
            "a divisor of num_attention_heads " + std::to_string(c.num_heads),
            std::to_string(c.num_kv_heads));
  }
  if (c.hidden_act != "silu") invalid(source, "hidden_act", "\"silu\"", "\"" + c.hidden_act + "\"");
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps)) {
    invalid(source, "rms_norm_eps", "a positive number", format_number(c.rms_norm_eps));
  }
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) {
    invalid(source, "rope_theta", "a positive number", format_number(c.rope_theta));
  }
  if (!(c.partial_rotary_factor > 0 && c.partial_rotary_factor <= 1)) {
    invalid(source, "partial_rotary_factor", "a number in (0, 1]",
            format_number(c.partial_rotary_factor));
  }
  if (c.sliding_window < 0) {
    invalid(source, "sliding_window", "a positive integer or null",
            std::to_string(c.sliding_window));
  }
  if (!(c.initializer_range > 0)) {
    invalid(source, "initializer_range", "a positive number", format_number(c.initializer_range));
  }
  static const std::set<std::string> kDtypes = {"bfloat16", "float16", "float32"};
  if (!kDtypes.count(c.dtype)) {
    invalid(source, "torch_dtype", "bfloat16, float16 or float32", "\"" + c.dtype + "\"");
  }
  if (c.pad_token_id && (*c.pad_token_id < 0 || *c.pad_token_id >= c.vocab_size)) {
    invalid(source, "pad_token_id", "an id in [0, vocab_size " + std::to_string(c.vocab_size) + ")",
            std::to_string(*c.pad_token_id));
  }
  for (int64_t id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size) {
      invalid(source, "eos_token_id", "ids in [0, vocab_size " + std::to_string(c.vocab_size) + ")",
              std::to_string(id));
    }
  }

  c.head_dim = c.hidden_size / c.num_heads;
  // Python's int(head_dim * partial_rotary_factor), as transformers computes it.
  c.rotary_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * c.partial_rotary_factor);
  if (c.rotary_dim <= 0 || c.rotary_dim % 2 != 0) {
    invalid(source, "partial_rotary_factor",
            "a factor giving an even, positive rotary dim (head_dim " + std::to_string(c.head_dim) +
                " * factor)",
            format_number(c.partial_rotary_factor) + " -> " + std::to_string(c.rotary_dim));
  }
  c.q_size = c.num_heads * c.head_dim;
  c.kv_size = c.num_kv_heads * c.head_dim;
  c.kv_groups = c.num_heads / c.num_kv_heads;

  c.rope_attention_scaling = 1.0;
  if (c.rope_type == RopeType::kLongrope) {
    const size_t half = static_cast<size_t>(c.rotary_dim / 2);
    const char* names[2] = {"short_factor", "long_factor"};
    const std::vector<double>* lists[2] = {&c.short_factor, &c.long_factor};
    for (int i = 0; i < 2; ++i) {
      if (lists[i]->size() != half) {
        invalid(source, std::string("rope_scaling/rope_parameters.") + names[i],
                std::to_string(half) + " entries (rotary_dim / 2)",
                std::to_string(lists[i]->size()) + " entries");
      }
      for (double f : *lists[i]) {
        if (!(f > 0) || !std::isfinite(f)) {
          invalid(source, std::string("rope_scaling/rope_parameters.") + names[i],
                  "positive numbers", format_number(f));
        }
      }
    }
    require_positive(source, "original_max_position_embeddings",
                     c.original_max_position_embeddings);
    if (c.attention_factor && !(*c.attention_factor > 0)) {
      invalid(source, "rope_scaling/rope_parameters.attention_factor", "a positive number",
              format_number(*c.attention_factor));
    }
    if (c.rope_factor && !(*c.rope_factor > 0)) {
      invalid(source, "rope_scaling/rope_parameters.factor", "a positive number",
              format_number(*c.rope_factor));
    }
    // transformers' _compute_longrope_parameters.
    double factor = c.rope_factor.value_or(static_cast<double>(c.max_position_embeddings) /
                                           static_cast<double>(c.original_max_position_embeddings));
    if (c.attention_factor) {
      c.rope_attention_scaling = *c.attention_factor;
    } else if (factor > 1.0) {
      c.rope_attention_scaling =
          std::sqrt(1.0 + std::log(factor) /
                              std::log(static_cast<double>(c.original_max_position_embeddings)));
    }
  }
}

int64_t ModelConfig::num_parameters() const {
  const int64_t c = hidden_size;
  const int64_t per_layer =
      2 * c + qkv_rows() * c + c * q_size + gate_up_rows() * c + c * intermediate_size;
  return vocab_size * c * (tie_word_embeddings ? 1 : 2) + num_layers * per_layer + c;
}

nlohmann::json to_hf_json(const ModelConfig& c) {
  json j;
  j["architectures"] = {"Phi3ForCausalLM"};
  j["model_type"] = "phi3";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["hidden_act"] = c.hidden_act;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["original_max_position_embeddings"] = c.original_max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["partial_rotary_factor"] = c.partial_rotary_factor;
  j["rope_scaling"] = nullptr;
  if (c.rope_type == RopeType::kLongrope) {
    json rope = {
        {"type", "longrope"}, {"short_factor", c.short_factor}, {"long_factor", c.long_factor}};
    if (!c.rope_factor && !c.attention_factor) {
      j["rope_scaling"] = rope;
    } else {
      rope.erase("type");
      rope["rope_type"] = "longrope";
      rope["rope_theta"] = c.rope_theta;
      rope["partial_rotary_factor"] = c.partial_rotary_factor;
      rope["original_max_position_embeddings"] = c.original_max_position_embeddings;
      if (c.rope_factor) rope["factor"] = *c.rope_factor;
      if (c.attention_factor) rope["attention_factor"] = *c.attention_factor;
      j["rope_parameters"] = rope;
    }
  }
  j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = c.dtype;
  j["dtype"] = c.dtype;
  j["initializer_range"] = c.initializer_range;
  j["bos_token_id"] = c.bos_token_id ? json(*c.bos_token_id) : json(nullptr);
  if (c.eos_token_ids.empty()) {
    j["eos_token_id"] = nullptr;
  } else if (c.eos_token_ids.size() == 1) {
    j["eos_token_id"] = c.eos_token_ids[0];
  } else {
    j["eos_token_id"] = c.eos_token_ids;
  }
  j["pad_token_id"] = c.pad_token_id ? json(*c.pad_token_id) : json(nullptr);
  j["attention_dropout"] = 0.0;
  j["resid_pdrop"] = 0.0;
  j["embd_pdrop"] = 0.0;
  j["use_cache"] = true;
  return j;
}

}  // namespace align
