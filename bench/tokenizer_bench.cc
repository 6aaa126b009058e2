// Tokenizer throughput on one core: builds a deterministic corpus of N MB in documents of a few KB
// (like JSONL records), encodes every document, and prints MB/s and tokens/s per kind of text.
//
//   build/bin/tokenizer_bench [--mb 32] [--tokenizer DIR] [--passes 2]
//
// DIR defaults to the small golden tokenizer (tests/golden/tokenizer/main); pass a Phi-4 download
// for real numbers. Pass 1 starts with an empty word cache, later passes reuse it.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "data/tokenizer.h"

namespace {

using align::TokenId;
using align::Tokenizer;

const char* kCommon[] = {
    "the",     "of",     "and",      "to",     "in",       "is",      "that",    "for",
    "it",      "with",   "as",       "was",    "on",       "be",      "by",      "this",
    "are",     "from",   "at",       "or",     "an",       "not",     "have",    "which",
    "model",   "data",   "training", "result", "function", "value",   "system",  "learning",
    "however", "people", "between",  "number", "because",  "through", "example", "important"};
const char* kSyllables[] = {"ka", "ri", "mon", "tel", "ash", "or", "ven", "qu", "ist", "pra",
                            "lo", "ne", "sub", "dra", "ex",  "il", "ung", "zo", "th",  "ble"};
const char* kCode[] = {
    "def forward(self, x):\n        return self.proj(x)\n",
    "for (int i = 0; i < n; ++i) {\n  sum += a[i] * b[i];\n}\n",
    "    if err != nil {\n        return nil, err\n    }\n",
    "const auto it = map.find(key);\nif (it == map.end()) return std::nullopt;\n",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01';\n",
    "{\"role\": \"assistant\", \"content\": \"ok\", \"score\": 0.875}\n"};
const char* kCjk[] = {"机器学习", "模型",     "训练数据", "我们", "世界",
                      "日本語",   "テキスト", "한국어",   "문장", "的",
                      "是",       "在",       "了",       "，",   "。"};
const char* kEmoji[] = {"👍", "😀", "🎉", "❤️", "👨‍👩‍👧", "🇺🇸", "👋🏽"};

class CorpusBuilder {
 public:
  explicit CorpusBuilder(uint64_t seed) : rng_(seed) {}

  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  // Zipf-like English: frequent words plus a long tail of made-up words (cache misses).
  std::string word() {
    if (chance(0.7)) return kCommon[pick(std::size(kCommon))];
    std::string w;
    const size_t n = 1 + pick(4);
    for (size_t i = 0; i < n; ++i)
      w += kSyllables[pick(std::size(kSyllables))];
    if (chance(0.1)) w[0] = static_cast<char>(w[0] - 'a' + 'A');
    return w;
  }

  std::string english(size_t bytes) {
    std::string s;
    while (s.size() < bytes) {
      const size_t words = 5 + pick(15);
      for (size_t i = 0; i < words; ++i) {
        if (i) s += ' ';
        s += word();
        if (chance(0.05)) s += ",";
        if (chance(0.03)) s += " " + std::to_string(pick(100000));
      }
      s += chance(0.8) ? ". " : (chance(0.5) ? "?\n" : "!\n\n");
    }
    return s;
  }

  std::string code(size_t bytes) {
    std::string s;
    while (s.size() < bytes) {
      s += kCode[pick(std::size(kCode))];
      if (chance(0.3)) s += "    // " + word() + " " + word() + "\n";
    }
    return s;
  }

  std::string cjk(size_t bytes) {
    std::string s;
    while (s.size() < bytes) {
      s += kCjk[pick(std::size(kCjk))];
      if (chance(0.05)) s += kEmoji[pick(std::size(kEmoji))];
      if (chance(0.05)) s += " ";
    }
    return s;
  }

  std::string mixed(size_t bytes) {
    std::string s;
    while (s.size() < bytes) {
      switch (pick(5)) {
        case 0:
          s += english(200);
          break;
        case 1:
          s += code(150);
          break;
        case 2:
          s += cjk(90);
          break;
        case 3:
          s += "<|im_start|>user<|im_sep|>" + english(60) + "<|im_end|>";
          break;
        default:
          s += "  \t" + std::to_string(pick(1000000000)) + "   \n\n";
          break;
      }
    }
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

struct Row {
  std::string name;
  std::vector<std::string> documents;
  size_t bytes = 0;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run(int argc, char** argv) {
  double mb = 32;
  int passes = 2;
  std::string dir = std::string(ALIGN_SOURCE_DIR) + "/tests/golden/tokenizer/main";
  CLI::App app(
      "Tokenizer encode throughput on a generated corpus (see the comment at the top of "
      "bench/tokenizer_bench.cc)");
  app.add_option("--mb", mb, "Megabytes of text");
  app.add_option("--tokenizer", dir, "Tokenizer folder");
  app.add_option("--passes", passes, "Timed passes (at least 1)")->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  const auto load_start = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::load(dir);
  std::printf("tokenizer %s: vocab %lld, loaded in %.2f s\n", tok.source().c_str(),
              static_cast<long long>(tok.vocab_size()), seconds_since(load_start));

  // A quarter of the bytes per kind of text, in documents of 1-4 KB.
  CorpusBuilder builder(42);
  const size_t per_kind = static_cast<size_t>(mb * 1e6 / 4);
  std::vector<Row> rows = {
      {"english", {}, 0}, {"code", {}, 0}, {"cjk+emoji", {}, 0}, {"mixed+special", {}, 0}};
  for (Row& row : rows) {
    while (row.bytes < per_kind) {
      const size_t size = 1000 + builder.pick(3000);
      std::string doc = row.name == "english"     ? builder.english(size)
                        : row.name == "code"      ? builder.code(size)
                        : row.name == "cjk+emoji" ? builder.cjk(size)
                                                  : builder.mixed(size);
      row.bytes += doc.size();
      row.documents.push_back(std::move(doc));
    }
  }

  std::printf("\none core, %d pass(es); pass 1 starts with an empty word cache\n", passes);
  std::printf("%-14s %4s %8s %8s %8s %12s %9s\n", "text", "pass", "MB", "seconds", "MB/s",
              "tokens/s", "bytes/tok");
  for (int pass = 1; pass <= passes; ++pass) {
    size_t total_bytes = 0, total_tokens = 0;
    double total_seconds = 0;
    for (const Row& row : rows) {
      size_t tokens = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const std::string& doc : row.documents)
        tokens += tok.encode(doc).size();
      const double s = seconds_since(start);
      std::printf("%-14s %4d %8.1f %8.3f %8.1f %12.3g %9.2f\n", row.name.c_str(), pass,
                  row.bytes / 1e6, s, row.bytes / 1e6 / s, tokens / s,
                  static_cast<double>(row.bytes) / tokens);
      total_bytes += row.bytes;
      total_tokens += tokens;
      total_seconds += s;
    }
    std::printf("%-14s %4d %8.1f %8.3f %8.1f %12.3g %9.2f\n", "all", pass, total_bytes / 1e6,
                total_seconds, total_bytes / 1e6 / total_seconds, total_tokens / total_seconds,
                static_cast<double>(total_bytes) / total_tokens);
  }

  // Decoding the whole corpus back.
  std::vector<std::vector<TokenId>> encoded;
  for (const Row& row : rows) {
    for (const std::string& doc : row.documents)
      encoded.push_back(tok.encode(doc));
  }
  size_t decoded_bytes = 0, tokens = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& ids : encoded) {
    decoded_bytes += tok.decode(ids).size();
    tokens += ids.size();
  }
  const double s = seconds_since(start);
  std::printf("%-14s %4s %8.1f %8.3f %8.1f %12.3g\n", "decode (all)", "-", decoded_bytes / 1e6, s,
              decoded_bytes / 1e6 / s, tokens / s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const align::Error& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
}
