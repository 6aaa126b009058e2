// align eval, pts, generate and logprobs on an NF4-quantised base (model.quantize in the eval and
// pts configs, --quantize on generate and logprobs): the same outputs as the same commands on the
// dequantised copy, the dense model whose projections hold deq(W), written here by loading the
// model quantised and saving it. A quantised model's forward is the dense forward on the
// dequantised weights bit for bit (tests/model/nf4_test.cc), so every sampled token, log-prob,
// estimate and pair must agree exactly; and they differ from the unquantised model's (for eval, on
// the random base: the trained toy model is too sure of its answers for NF4 to move a sample).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/atomic_file.h"
#include "model/peft_io.h"
#include "model/phi3_model.h"
#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;

// The toy task's SFT model (testing::ToyTask) and its dequantised NF4 copies, built once.
struct QuantizedToy {
  testing::ToyTask task;
  std::string deq = task.dir.file("deq"), deq_plain = task.dir.file("deq-plain");

  QuantizedToy() {
    for (bool double_quant : {true, false}) {
      const Phi3Model q =
          Phi3Model::load(task.model, torch::kFloat, torch::kCPU, Nf4Options{64, double_quant});
      save_model_dir(double_quant ? deq : deq_plain, q, task.model);
    }
  }
};

QuantizedToy& toy() {
  static QuantizedToy* t = new QuantizedToy;  // shared by the tests of this binary
  return *t;
}

// An eval config on `model` over two names twice each, writing into dir/<name>.
std::string eval_config(const std::string& name, const nlohmann::json& model) {
  testing::ToyTask& task = toy().task;
  nlohmann::json c = {{"model", {{"dtype", "fp32"}, {"device", "cpu"}}},
                      {"data", {{"path", task.queries(name, {"Ann", "Bob"}, 2)}}},
                      {"oracle", task.oracle},
                      {"sampling", {{"max_new_tokens", 12}, {"num_samples", 8}, {"seed", 7}}},
                      {"eval", {{"k", {1, 4}}}},
                      {"output", {{"dir", task.dir.file(name)}}}};
  c["model"].merge_patch(model);
  const std::string path = task.dir.file(name + ".json");
  testing::write_text(path, c.dump(2));
  return path;
}

std::string file_of(const std::string& dir, const std::string& name) {
  return read_file(dir + "/" + name);
}

TEST(QuantizeCli, EvalAndPtsOnTheQuantisedBaseEqualTheDequantisedCopy) {
  QuantizedToy& t = toy();
  std::string out;
  ASSERT_EQ(
      run("eval --config " + eval_config("eval-q", {{"path", t.task.model}, {"quantize", "nf4"}}),
          &out),
      0)
      << out;
  ASSERT_EQ(run("eval --config " + eval_config("eval-d", {{"path", t.deq}}), &out), 0) << out;
  const std::string q = t.task.dir.file("eval-q"), d = t.task.dir.file("eval-d");
  EXPECT_EQ(file_of(q, "results.jsonl"), file_of(d, "results.jsonl"));
  const auto summary_q = nlohmann::json::parse(file_of(q, "summary.json"));
  const auto summary_d = nlohmann::json::parse(file_of(d, "summary.json"));
  EXPECT_EQ(summary_q.at("pass@k"), summary_d.at("pass@k"));
  EXPECT_EQ(summary_q.at("mean_tokens"), summary_d.at("mean_tokens"));
  // The toy model is near-deterministic, so NF4 need not change its samples; the random base's
  // flat distributions show that the quantised load took effect.
  const std::string base = t.task.dir.file("base");
  ASSERT_EQ(
      run("eval --config " + eval_config("eval-bq", {{"path", base}, {"quantize", "nf4"}}), &out),
      0)
      << out;
  ASSERT_EQ(run("eval --config " + eval_config("eval-b", {{"path", base}}), &out), 0) << out;
  EXPECT_NE(file_of(t.task.dir.file("eval-bq"), "results.jsonl"),
            file_of(t.task.dir.file("eval-b"), "results.jsonl"));
  const auto config = nlohmann::json::parse(file_of(q, "config.json"));
  EXPECT_EQ(config.at("model").at("quantize"), "nf4");
  EXPECT_EQ(config.at("model").at("double_quant"), true);

  const std::string queries = t.task.queries("pts", {"Ann", "Bob"}, 2);
  const nlohmann::json quantized = {{"model", {{"quantize", "nf4"}}}};
  ASSERT_EQ(run("pts --config " + t.task.pts_config("pts-q", queries, quantized), &out), 0) << out;
  ASSERT_EQ(
      run("pts --config " + t.task.pts_config("pts-d", queries, {{"model", {{"path", t.deq}}}}),
          &out),
      0)
      << out;
  const std::string pq = t.task.dir.file("pts-q"), pd = t.task.dir.file("pts-d");
  for (const char* name : {"pivots.jsonl", "pairs.jsonl", "completions.jsonl"})
    EXPECT_EQ(file_of(pq, name), file_of(pd, name)) << name;
  auto without_time = [](std::vector<nlohmann::json> records) {
    for (auto& r : records)
      r.erase("seconds");
    return records;
  };
  EXPECT_EQ(without_time(read_jsonl(pq + "/queries.jsonl")),
            without_time(read_jsonl(pd + "/queries.jsonl")));
  EXPECT_FALSE(read_jsonl(pq + "/pairs.jsonl").empty());  // the side token is still the pivot
}

TEST(QuantizeCli, GenerateAndLogprobsWithQuantizeEqualTheDequantisedCopy) {
  QuantizedToy& t = toy();
  const testing::TempDir& dir = t.task.dir;
  auto generate = [&](const std::string& model, const std::string& flags, const std::string& name) {
    std::string out;
    EXPECT_EQ(run("generate --model " + model + " --prompt 'Pick a side for Cid.' --chat " +
                      "--num-samples 6 --max-new-tokens 10 --seed 3 --dtype fp32 --device cpu " +
                      flags + " --output " + dir.file(name),
                  &out),
              0)
        << out;
    return read_file(dir.file(name));
  };
  const std::string q = generate(t.task.model, "--quantize nf4", "gen-q.jsonl");
  EXPECT_EQ(q, generate(t.deq, "", "gen-d.jsonl"));
  EXPECT_NE(q, generate(t.task.model, "", "gen-f.jsonl"));
  const std::string plain =
      generate(t.task.model, "--quantize nf4 --double-quant false", "gen-qp.jsonl");
  EXPECT_EQ(plain, generate(t.deq_plain, "", "gen-dp.jsonl"));
  EXPECT_NE(plain, q);  // 8-bit absmax moved some weights

  testing::write_text(dir.file("seqs.jsonl"),
                      "{\"text\": \"Pick a side for Dan.\"}\n{\"text\": \"I pick left.\"}\n");
  auto logprobs = [&](const std::string& model, const std::string& flags, const std::string& name) {
    std::string out;
    EXPECT_EQ(run("logprobs --model " + model + " --input " + dir.file("seqs.jsonl") +
                      " --dtype fp32 --device cpu " + flags + " --output " + dir.file(name),
                  &out),
              0)
        << out;
    return read_file(dir.file(name));
  };
  const std::string lq = logprobs(t.task.model, "--quantize nf4", "lp-q.jsonl");
  EXPECT_EQ(lq, logprobs(t.deq, "", "lp-d.jsonl"));
  EXPECT_NE(lq, logprobs(t.task.model, "", "lp-f.jsonl"));
}

// A quantize value other than none or nf4 is refused before anything loads, naming the config
// file and field, or the flag.
TEST(QuantizeCli, BadQuantizeValuesNameTheFieldOrFlag) {
  testing::TempDir dir;
  const std::string base = dir.file("base");
  ASSERT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                " --out " + base + " --seed 1 --dtype fp32"),
            0);
  testing::write_text(dir.file("q.jsonl"), "{\"id\": 1, \"prompt\": \"x\"}\n");
  const nlohmann::json c = {{"model", {{"path", base}, {"device", "cpu"}, {"quantize", "int8"}}},
                            {"data", {{"path", dir.file("q.jsonl")}}},
                            {"oracle", {{"type", "regex"}, {"pattern", "x"}}},
                            {"output", {{"dir", dir.file("out")}}}};
  testing::write_text(dir.file("eval.json"), c.dump());
  std::string out;
  for (const char* command : {"eval", "pts"}) {
    EXPECT_EQ(run(std::string(command) + " --config " + dir.file("eval.json"), &out), 1) << out;
    EXPECT_NE(out.find(dir.file("eval.json") + ": model.quantize: expected none or nf4, found "
                                               "'int8'"),
              std::string::npos)
        << command << ": " << out;
  }
  EXPECT_EQ(run("generate --model " + base + " --prompt x --quantize int8 --output " +
                    dir.file("g.jsonl"),
                &out),
            1);
  EXPECT_NE(out.find("--quantize: expected none or nf4, found 'int8'"), std::string::npos) << out;
  EXPECT_EQ(run("logprobs --model " + base + " --input " + dir.file("q.jsonl") +
                    " --quantize nf5 --output " + dir.file("l.jsonl"),
                &out),
            1);
  EXPECT_NE(out.find("--quantize: expected none or nf4, found 'nf5'"), std::string::npos) << out;
}

}  // namespace
}  // namespace align
