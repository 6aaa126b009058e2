// BPE merging on a hand-written vocabulary: the 256 byte characters with id = byte value, plus
// five merges. Expected ids are derived by hand from HF's rule: merge the adjacent pair of lowest
// rank, the leftmost on ties, until no pair has a merge.
#include "data/bpe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "common/error.h"
#include "data/byte_level.h"

namespace align {
namespace {

constexpr TokenId kBC = 256, kAB = 257, kLL = 258, kHE = 259, kHELL = 260, kHELLO = 261;

Bpe::Vocab hand_vocab() {
  Bpe::Vocab vocab;
  for (int b = 0; b < 256; ++b) {
    vocab.emplace_back(bytes_to_byte_level(std::string(1, static_cast<char>(b))), b);
  }
  vocab.emplace_back("bc", kBC);
  vocab.emplace_back("ab", kAB);
  vocab.emplace_back("ll", kLL);
  vocab.emplace_back("he", kHE);
  vocab.emplace_back("hell", kHELL);
  vocab.emplace_back("hello", kHELLO);  // in the vocabulary, but no merge builds it
  return vocab;
}

const Bpe::Merges kMerges = {{"b", "c"}, {"a", "b"}, {"l", "l"}, {"h", "e"}, {"he", "ll"}};

std::vector<TokenId> run(const Bpe& bpe, const std::string& word) {
  std::vector<TokenId> ids;
  bpe.encode(word, ids);
  return ids;
}

TEST(Bpe, MergesByRankThenPosition) {
  const Bpe bpe(hand_vocab(), kMerges, {}, "test");
  using V = std::vector<TokenId>;
  EXPECT_EQ(run(bpe, "abc"), (V{'a', kBC}));  // "b c" has rank 0, beats "a b" to its left
  EXPECT_EQ(run(bpe, "ab"), (V{kAB}));
  EXPECT_EQ(run(bpe, "abab"), (V{kAB, kAB}));
  EXPECT_EQ(run(bpe, "lll"), (V{kLL, 'l'}));  // tie between two "l l": the leftmost wins
  EXPECT_EQ(run(bpe, "hell"), (V{kHELL}));    // "l l" (rank 2) first, then "h e", then "he ll"
  EXPECT_EQ(run(bpe, "hello"), (V{kHELL, 'o'}));
  EXPECT_EQ(run(bpe, "hhell"), (V{'h', kHELL}));
  EXPECT_EQ(run(bpe, "xyz"), (V{'x', 'y', 'z'}));
  EXPECT_EQ(run(bpe, " \n"), (V{' ', '\n'}));
  EXPECT_EQ(run(bpe, "\xE4\xBD\xA0"), (V{0xE4, 0xBD, 0xA0}));
  EXPECT_EQ(run(bpe, ""), V{});
}

TEST(Bpe, LongWordsAndCacheGiveTheSameIds) {
  const Bpe bpe(hand_vocab(), kMerges, {}, "test");
  std::vector<TokenId> expected(500, kLL);
  expected.push_back('l');
  const std::string word(1001, 'l');  // longer than the cache takes
  EXPECT_EQ(run(bpe, word), expected);
  // Same word twice: the second comes from the cache.
  EXPECT_EQ(run(bpe, "hello"), run(bpe, "hello"));
}

TEST(Bpe, IgnoreMergesEmitsWholeVocabularyWords) {
  Bpe::Options ignore;
  ignore.ignore_merges = true;
  const Bpe merging(hand_vocab(), kMerges, {}, "test");
  const Bpe ignoring(hand_vocab(), kMerges, ignore, "test");
  EXPECT_EQ(run(merging, "hello"), (std::vector<TokenId>{kHELL, 'o'}));
  EXPECT_EQ(run(ignoring, "hello"), (std::vector<TokenId>{kHELLO}));
  EXPECT_EQ(run(ignoring, "hellox"), (std::vector<TokenId>{kHELL, 'o', 'x'}));  // not whole
}

TEST(Bpe, Lookups) {
  const Bpe bpe(hand_vocab(), kMerges, {}, "test");
  EXPECT_EQ(bpe.token_to_id("\xC4\xA0"), std::optional<TokenId>(' '));  // "Ġ"
  EXPECT_EQ(bpe.token_to_id("hell"), std::optional<TokenId>(kHELL));
  EXPECT_FALSE(bpe.token_to_id("nope").has_value());
  ASSERT_NE(bpe.id_to_token(kAB), nullptr);
  EXPECT_EQ(*bpe.id_to_token(kAB), "ab");
  EXPECT_EQ(bpe.id_to_token(9999), nullptr);
  EXPECT_EQ(bpe.max_id(), kHELLO);
}

TEST(Bpe, ThreadsShareTheCache) {
  const Bpe bpe(hand_vocab(), kMerges, {}, "test");
  const std::vector<std::string> words = {"abc", "hello", "lll", "hhell", "abab", "xyz"};
  std::vector<std::vector<TokenId>> expected;
  for (const auto& w : words)
    expected.push_back(run(bpe, w));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2000; ++round) {
        for (size_t i = 0; i < words.size(); ++i) {
          // Vary the words so that inserts and lookups interleave.
          const std::string w = words[i] + std::string(round % 7, 'z');
          std::vector<TokenId> want = expected[i];
          want.insert(want.end(), round % 7, 'z');
          if (run(bpe, w) != want) ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (int f : failures)
    EXPECT_EQ(f, 0);
}

TEST(WordCache, FillsUpThenStopsTakingWords) {
  WordCache cache(/*max_entries=*/4);
  auto ids_of = [](int i) { return std::vector<TokenId>{i, i + 1}; };
  for (int i = 0; i < 10; ++i) {
    const std::string word = "word" + std::to_string(i);
    cache.insert(word, hash_bytes(word), ids_of(i).data(), 2);
    cache.insert(word, hash_bytes(word), ids_of(i).data(), 2);  // repeated: no second entry
  }
  EXPECT_EQ(cache.size(), 4u);
  for (int i = 0; i < 10; ++i) {
    const std::string word = "word" + std::to_string(i);
    std::vector<TokenId> out = {-1};
    const bool hit = cache.lookup(word, hash_bytes(word), out);
    EXPECT_EQ(hit, i < 4) << word;
    if (hit) {
      EXPECT_EQ(out, (std::vector<TokenId>{-1, i, i + 1}));  // appended
    } else {
      EXPECT_EQ(out, std::vector<TokenId>{-1});
    }
  }
  WordCache roomy;
  const std::string long_word(WordCache::kMaxWordBytes + 1, 'x');
  const TokenId id = 1;
  roomy.insert(long_word, hash_bytes(long_word), &id, 1);
  EXPECT_EQ(roomy.size(), 0u);
  EXPECT_NE(hash_bytes("ab"), hash_bytes("ba"));
  EXPECT_NE(hash_bytes(""), 0u);
}

// A vocabulary without the characters of 'q' and 'x' (SmolLM2's lacks 21 bytes). HF's
// BPE::merge_word drops a character without a token before merging, so its neighbours merge
// across it; with an unk_token each such byte is that token (one per run with fuse_unk), and the
// unk symbol merges like any other.
Bpe::Vocab without_q_and_x() {
  Bpe::Vocab vocab = hand_vocab();
  vocab.erase(
      std::remove_if(vocab.begin(), vocab.end(),
                     [](const auto& entry) { return entry.first == "q" || entry.first == "x"; }),
      vocab.end());
  return vocab;
}

TEST(Bpe, BytesWithoutACharacterAreDroppedBeforeMerging) {
  const Bpe bpe(without_q_and_x(), kMerges, {}, "test");
  EXPECT_EQ(bpe.missing_bytes(), (std::vector<uint8_t>{'q', 'x'}));
  EXPECT_FALSE(bpe.unk_id().has_value());
  using V = std::vector<TokenId>;
  EXPECT_EQ(run(bpe, "q"), V{});
  EXPECT_EQ(run(bpe, "qxq"), V{});
  EXPECT_EQ(run(bpe, "aqb"), (V{kAB}));        // "a b" merges across the dropped 'q'
  EXPECT_EQ(run(bpe, "abqc"), (V{'a', kBC}));  // as "abc"
  EXPECT_EQ(run(bpe, "hexllqo"), (V{kHELL, 'o'}));
  EXPECT_EQ(run(bpe, "qa"), (V{'a'}));
  EXPECT_EQ(run(bpe, "aq"), (V{'a'}));
  EXPECT_EQ(run(bpe, "aq"), (V{'a'}));  // again, from the cache
  Bpe::Options ignore;
  ignore.ignore_merges = true;
  const Bpe ignoring(without_q_and_x(), kMerges, ignore, "test");
  EXPECT_EQ(run(ignoring, "hexllo"), (V{kHELL, 'o'}));  // "hexllo" is no vocabulary word
  EXPECT_EQ(run(ignoring, "hello"), (V{kHELLO}));
}

TEST(Bpe, BytesWithoutACharacterBecomeTheUnkToken) {
  using V = std::vector<TokenId>;
  Bpe::Options one_each;
  one_each.unk_token = "b";
  const Bpe bpe(without_q_and_x(), kMerges, one_each, "test");
  EXPECT_EQ(bpe.unk_id(), std::optional<TokenId>('b'));
  EXPECT_EQ(run(bpe, "q"), (V{'b'}));
  EXPECT_EQ(run(bpe, "qx"), (V{'b', 'b'}));
  // a b b c: "b c" (rank 0) at the right first, then "a b".
  EXPECT_EQ(run(bpe, "aqqc"), (V{kAB, kBC}));
  Bpe::Options fused = one_each;
  fused.fuse_unk = true;
  const Bpe fusing(without_q_and_x(), kMerges, fused, "test");
  EXPECT_EQ(run(fusing, "qx"), (V{'b'}));
  EXPECT_EQ(run(fusing, "aqqc"), (V{'a', kBC}));  // a b c
  EXPECT_EQ(run(fusing, "qaq"), (V{'b', kAB}));   // b a b: only "a b" merges
  // With every byte present the unk_token is never used.
  const Bpe complete(hand_vocab(), kMerges, fused, "test");
  EXPECT_FALSE(complete.unk_id().has_value());
  EXPECT_TRUE(complete.missing_bytes().empty());
}

TEST(Bpe, RejectsBadVocabularies) {
  auto expect_error = [](const Bpe::Vocab& vocab, const Bpe::Merges& merges, const char* part,
                         const Bpe::Options& options = {}) {
    try {
      Bpe bpe(vocab, merges, options, "file.json: model");
      FAIL() << "no error; expected one containing " << part;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error(hand_vocab(), {{"b", "c"}, {"q", "zz"}}, "model.merges[1]");
  expect_error(hand_vocab(), {{"b", "c"}, {"q", "zz"}}, "\"zz\" is not in the vocabulary");
  expect_error(hand_vocab(), {{"x", "y"}}, "the merged token \"xy\" is not in the vocabulary");
  expect_error({{"hello", 0}, {"world", 1}}, {},
               "model.vocab: none of the 256 byte-level characters");
  Bpe::Options unk;
  unk.unk_token = "<unk>";
  expect_error(without_q_and_x(), {},
               "model.unk_token: \"<unk>\" is not in the vocabulary, and 2 bytes have no "
               "character there",
               unk);
  EXPECT_NO_THROW(Bpe(hand_vocab(), {}, unk, "test"));  // every byte present: never needed
  Bpe::Vocab duplicate = hand_vocab();
  duplicate.emplace_back("zz", kAB);
  expect_error(duplicate, {}, "id 257 is given to both");
}

}  // namespace
}  // namespace align
