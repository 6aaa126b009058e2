#!/usr/bin/env python3
"""Writes the tokenizer golden files under tests/golden/tokenizer/ (dev-only, deterministic).

The reference is Hugging Face: a small byte-level BPE is trained with `tokenizers` on a corpus this
script generates itself, given Phi-4's pre-tokenizer (cl100k regex, Split Isolated + ByteLevel
without regex), decoder and special tokens (same names, order and flags as microsoft/phi-4, ids
following the learned vocabulary). Every expected id sequence below comes from `tokenizers` or
`transformers`, never from the C++ code under test.

Outputs (all small):
  main/           tokenizer.json (merges as pairs), tokenizer_config.json, vocab.json, merges.txt
  legacy/         tokenizer.json with merges as "a b" strings, GPT-2 ByteLevel pre-tokenizer
                  (use_regex, add_prefix_space) and added tokens with assorted flags
  ignore_merges/  main with model.ignore_merges = true and a few merges removed, so whole-word
                  vocabulary hits differ from what merging alone can build
  missing_bytes/  main without the 21 byte characters SmolLM2-135M's vocabulary lacks (ids
                  renumbered to stay dense); encode_missing_bytes.json also holds the ids with
                  model.unk_token "-" ("ids_unk") and with fuse_unk ("ids_unk_fused")
  encode_<variant>.json   {text or bytes_hex, allow_special, ids}
  decode_<variant>.json   {ids, skip_special, text}
  chat_main.json          transformers apply_chat_template(tokenize=True) results
  unicode_classes.json    how HF's pre-tokenizers split every code point, as ranges

Usage: ~/.cache/align/venv/bin/python tools/golden_tokenizer.py [--out tests/golden/tokenizer]
       (about 3 minutes, most of it the Unicode sweep; --skip-sweep leaves it out)
       tools/golden_tokenizer.py --unicode-delta   prints the tables of data/onig_compat.cc
       tools/golden_tokenizer.py --phi4-from-tiktoken cl100k_base.tiktoken DIR   (benchmarks)
"""

import argparse
import copy
import json
import os
import random
import shutil
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

CL100K = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Phi-4's chat template (microsoft/phi-4 tokenizer_config.json).
PHI4_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if (message['role'] == 'system') %}"
    "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'assistant') %}"
    "{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}"
)


def phi4_special_tokens():
    """Phi-4's added tokens in id order: offsets 0..95 from the first added id (100256 in Phi-4)."""
    named = {0: "<|dummy_0|>", 1: "<|endoftext|>", 2: "<|fim_prefix|>", 3: "<|fim_middle|>",
             4: "<|fim_suffix|>", 8: "<|im_start|>", 9: "<|im_end|>", 10: "<|im_sep|>",
             20: "<|endofprompt|>"}
    out, dummy = [], 1
    for offset in range(96):
        if offset in named:
            out.append(named[offset])
        else:
            out.append(f"<|dummy_{dummy}|>")
            dummy += 1
    assert out[93] == "<|dummy_85|>" and out[95] == "<|dummy_87|>"
    return out


# ---------------------------------------------------------------------------------------------
# Training corpus: generated deterministically from fixed word lists and a seeded RNG.

ENGLISH = """The quick brown fox jumps over the lazy dog. A tokenizer splits text into pieces that a
model can learn from. Byte pair encoding starts from single bytes and merges the most frequent
pairs, one at a time, until the vocabulary is full. We're testing whether it's right; they'll see
that you've done it and I'm sure she'd agree. Don't worry: the results are deterministic. Hello
world! How are you today? This is a simple sentence, with commas, periods and questions? Numbers
like 42, 3.14159 and 1,000,000 appear in text as do dates such as 2024-01-15 and times like
12:30. Machine learning models are trained on large corpora of text drawn from books, articles,
code and conversations between people and assistants. The assistant answers helpfully."""

CODE = '''def tokenize(text: str) -> list[int]:
    """Return the token ids of text."""
    ids = []
    for word in text.split():
        ids.extend(vocab[word])
    return ids

int main(int argc, char** argv) {
  std::vector<int> values = {1, 2, 3};
  for (size_t i = 0; i < values.size(); ++i) {
    printf("%d\\n", values[i]);
  }
  return 0;
}
{"role": "user", "content": "What is 2 + 2?", "id": 12345}
SELECT name, count(*) FROM users WHERE age >= 18 GROUP BY name;
'''

MULTILINGUAL = """你好，世界。这是一个测试。机器学习很有趣。日本語のテキストも含まれています。
한국어 문장도 있습니다. Привет, мир! Это тест. Γειά σου κόσμε. مرحبا بالعالم. שלום עולם.
Café, naïve, résumé, Ångström, Straße, façade. Emoji: 👍 😀 🎉 ❤️ 👨‍👩‍👧 🇺🇸 👋🏽"""

WORDS = ("the of and to in is that for it with as was on be by this are from at or an not have "
         "which but all they one you had her his can more if will about their there what so up "
         "out when would other into them time some could these two may then do first any like "
         "model token merge byte pair vocabulary train learn assistant user system answer").split()


def training_corpus():
    rng = random.Random(1234)
    lines = [ENGLISH, CODE, MULTILINGUAL] * 8
    for _ in range(3000):
        n = rng.randint(3, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        if rng.random() < 0.2:
            words.insert(rng.randint(0, n), str(rng.randint(0, 99999)))
        sep = rng.choice([" ", " ", " ", "  ", "\t"])
        lines.append(sep.join(words) + rng.choice([".", "!", "?", ",", ":", "\n", " \n"]))
    return lines


def train_main():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CL100K), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1100, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[])
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    base = tok.get_vocab_size()
    specials = [AddedToken(s, single_word=False, lstrip=True, rstrip=True, normalized=False,
                           special=True) for s in phi4_special_tokens()]
    tok.add_special_tokens(specials)
    for i, s in enumerate(phi4_special_tokens()):
        assert tok.token_to_id(s) == base + i, (s, tok.token_to_id(s), base + i)
    return tok, base


# ---------------------------------------------------------------------------------------------
# Variants

def save_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1 if path.endswith("tokenizer_config.json")
                  else None, sort_keys=False)
        f.write("\n")


def write_main(tok, out):
    d = os.path.join(out, "main")
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    tok.model.save(d)  # vocab.json + merges.txt
    added = {}
    for tid, t in sorted(tok.get_added_tokens_decoder().items()):
        added[str(tid)] = {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                           "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special}
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": "<|endoftext|>",
        "chat_template": PHI4_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "extra_special_tokens": {},
        "model_max_length": 16384,
        "pad_token": "<|dummy_85|>",
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>",
    }
    save_json(os.path.join(d, "tokenizer_config.json"), config)
    return d


def write_legacy(tok, base, out):
    """String merges, GPT-2 ByteLevel pre-tokenizer, added tokens with assorted flags."""
    data = json.loads(tok.to_str())
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
    data["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                             "use_regex": True}
    vocab = data["model"]["vocab"]
    in_vocab = "ing"  # an added token whose content is also a model token keeps the model id
    assert in_vocab in vocab
    extra = [
        # content, id, special, lstrip, rstrip, single_word, normalized
        ("<mask>", None, False, True, False, True, False),
        ("[SEP]", None, True, False, True, False, False),
        ("[CLS]", None, True, False, False, False, False),
        ("[SE", None, False, False, False, False, False),
        ("hello world", None, False, False, False, False, True),
        ("EP] x", None, False, False, False, False, True),
        (in_vocab, vocab[in_vocab], False, False, False, True, True),
        ("<|endoftext|>", None, True, True, False, False, False),
    ]
    added = [t for t in data["added_tokens"] if t["content"] == "<|endoftext|>"]
    next_id = base
    data["added_tokens"] = []
    for content, tid, special, lstrip, rstrip, single_word, normalized in extra:
        if tid is None:
            tid = next_id
            next_id += 1
        data["added_tokens"].append({"id": tid, "content": content, "single_word": single_word,
                                     "lstrip": lstrip, "rstrip": rstrip,
                                     "normalized": normalized, "special": special})
    assert added  # the main tokenizer had it; here it is re-declared with lstrip only
    d = os.path.join(out, "legacy")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "tokenizer.json")
    save_json(path, data)
    loaded = Tokenizer.from_file(path)
    for t in data["added_tokens"]:
        assert loaded.token_to_id(t["content"]) == t["id"], t
    return d


def write_ignore_merges(tok, out):
    data = json.loads(tok.to_str())
    merges = data["model"]["merges"]
    # Remove the merge that builds each of these words: merging alone can no longer reach them,
    # but they stay in the vocabulary, so ignore_merges emits them whole.
    removed = []
    for word in ["Ġthe", "Ġmodel", "Ġassistant", "ing"]:
        for i, (a, b) in enumerate(merges):
            if a + b == word:
                removed.append(merges.pop(i))
                break
        else:
            raise SystemExit(f"no merge builds {word!r}")
    data["model"]["ignore_merges"] = True
    d = os.path.join(out, "ignore_merges")
    os.makedirs(d, exist_ok=True)
    save_json(os.path.join(d, "tokenizer.json"), data)
    return d, removed


# The bytes whose byte-level character SmolLM2-135M's vocabulary lacks: control bytes that never
# occurred in its training data, bytes that never occur in UTF-8 (0xC0, 0xC1, 0xF5..0xFF) and the
# lead bytes of U+40000..U+BFFFF (0xF1, 0xF2; planes with no assigned characters).
SMOLLM2_MISSING_BYTES = [4, 6, 19, 20, 22, 29, 192, 193, 241, 242] + list(range(245, 256))
assert len(SMOLLM2_MISSING_BYTES) == 21
UNK_FOR_MISSING = "-"  # a model token that merges ("->"), so unk symbols are seen merging


def byte_char(b):
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    n = sum(1 for x in range(b) if x not in bs)
    return chr(b) if b in bs else chr(256 + n)


def write_missing_bytes(tok, out):
    """main without SmolLM2's missing byte characters; ids renumbered densely (HF gives added
    tokens the ids after the vocabulary's size, so holes would move them)."""
    data = json.loads(tok.to_str())
    model = data["model"]
    gone = {byte_char(b) for b in SMOLLM2_MISSING_BYTES}
    for a, b in model["merges"]:
        assert a not in gone and b not in gone, (a, b)  # HF would refuse the merge
    kept = sorted((i, t) for t, i in model["vocab"].items() if t not in gone)
    model["vocab"] = {t: new for new, (_, t) in enumerate(kept)}
    for i, added in enumerate(data["added_tokens"]):
        added["id"] = len(kept) + i
    d = os.path.join(out, "missing_bytes")
    os.makedirs(d, exist_ok=True)
    save_json(os.path.join(d, "tokenizer.json"), data)
    return d


def missing_bytes_texts():
    """Text with the missing bytes alone, in runs, inside pre-tokens (where the characters around
    them may merge across them) and beside added tokens, plus text without them."""
    t = ["\x04", "\x06", "\x04\x06\x13\x14\x16\x1d", "a\x04b", "!\x04!", "-\x04>", ":\x06:", "\x04>", "\x04\x06>", "..\x06..",
         "((\x04((", " \x04", "\x04 x", "x \x04\x06 y", "he\x04llo", "hello\x04 world",
         "the\x13\x14model", "=\x04=\x04=", "\x1d\n\x1d", "\t\x16\t", "1\x042\x043",
         "<|im_start|>\x04<|im_end|>", "\x04<|endoftext|>\x06", "a \x04\x04\x04 !",
         # U+40000..U+BFFFF: 4-byte UTF-8 led by the missing 0xF1 or 0xF2 (0xF3, 0xF4 are kept)
         "\U00040000", "\U00080000", "\U000BFFFF", "a\U00050000b", "!\U00090001!",
         "x \U00040020\U00080041 y", "\U000E0001\U00040065\U000E006E", "👍\U00040041",
         "\U000F0000\x04\U00100000", "\U000E0041", "\U0010FFFF"]
    t += ["hello world", "  leading", "don't", "1234567890", "你好，世界", "👨‍👩‍👧‍👦", "Café",
          "\u00f1and\u00fa", "\x7f\x05\x07", "a\x00b", "tabs\t \t ", ENGLISH, CODE[:200],
          "<|im_start|>user<|im_sep|>hi<|im_end|>", ""]
    return t


# ---------------------------------------------------------------------------------------------
# Golden cases

def encode_texts():
    t = []
    # whitespace
    t += ["hello world", "  leading", "trailing   ", "a\tb\t\tc", "line1\r\nline2\r\n\r\n",
          "x \n y", "   \n\n   ", " ", "\t", "\n", "\r", "a  b   c    d", "end with space ",
          "tabs\t \t ", "mixed \t\n \r\n  x", " " * 40 + "x", "a" + " " * 17, "\n\n\nx\n\n",
          "\r\n\r\n", "x\r\r\ny", "  \t  hello"]
    # digits
    t += ["1", "12", "123", "1234", "1234567890", "3.14159", "a1b22c333d4444", "2024-01-15",
          "1,000,000", "x=12345678901234567890;", "١٢٣٤٥", "²³⁴", "ⅫⅣ", "½ cup", "𝟙𝟚𝟛𝟜"]
    # contractions in different cases
    t += ["don't", "DON'T", "it's", "IT'S", "It'S", "he'll", "HE'LL", "He'Ll", "we've",
          "We'VE", "they're", "THEY'RE", "I'm", "I'M", "she'd", "SHE'D", "'s", "'S'", "''s",
          "rock'n'roll", "o'clock", "'sx", "'llama", "'ſ", "x'ſx", "'re'Ve'LL", "' s", "'\ns",
          "Bob's car", "BOB'S CAR", "it’s"]
    # CJK and other scripts
    t += ["你好，世界", "日本語のテキスト", "한국어 텍스트", "中文 and English 混合",
          "Привет, мир!", "مرحبا بالعالم", "שלום עולם", "Γειά σου κόσμε", "ภาษาไทย"]
    # emoji and ZWJ sequences
    t += ["👍", "a👍b", "👨‍👩‍👧‍👦", "🇺🇸🇫🇷", "❤️", "👋🏽 hi", "🎉🎉🎉", "x 😀 y", "👩‍💻",
          "\u200d", "a\u200db"]
    # combining marks
    t += ["e\u0301", "Ame\u0301lie", "a\u0308\u0304", "\u0301 standalone", " \u0301x",
          "\u0301\u0301", "ก่า", "z\u0335\u0321\u0353a\u0336\u0317l"]
    # unusual whitespace
    t += ["a\u00a0b", "a\u2009b", "a\u3000b", "a\u0085b", "a\u200bb", "a\u2028b", "a\u2029b",
          "\u00a0\u00a0x", "x\u3000\u3000", "a\u180eb", "\ufeffx", "a\u000bb", "a\u000cb",
          "a\u001cb", "a\u001fb", "x \u00a0 y", "\u3000\n", "a\u202fb", "a\u205fb", "a\u1680b",
          "\u2003\u2003word", "word\u00a0", "\u00a0\n\u00a0"]
    # punctuation and symbols
    t += ["Hello, world!", "...", "!!!???", "a-b_c", "#include <vector>", "x->y", "(a+b)*c",
          "$100.00", "50%", "@user", "C++", "<html><body>", "'quoted'", '"double"',
          "end.\n", "foo.bar()\n\n", "    return x;\n", "\t}\n}\n"]
    # special tokens embedded in text, with and without surrounding whitespace
    t += ["<|im_start|>", "hello<|im_end|>", "hello <|im_end|> world",
          "<|im_start|>user<|im_sep|>hi<|im_end|>", "  <|endoftext|>  ", "a\n<|endoftext|>\nb",
          "<|endoftext|><|endoftext|>", "<|dummy_85|>", "x <|dummy_0|>y", "\t<|im_sep|>\n",
          "<|im_sep|>\u3000x", "x\u00a0<|im_end|>", "<|fim_prefix|>def f():<|fim_suffix|>\n"
          "<|fim_middle|>", "<|endofprompt|>", "a<|im_end|>  \n  b", "  <|im_start|>  "]
    # text that only looks like a special token
    t += ["<|im_start|", "<|IM_START|>", "<|im_start |>", "< |im_start|>", "<<|im_end|>>",
          "<|im_start|><|im_start|>", "<|endoftext|>x", "|im_end|", "<|dummy_999|>", "<|>",
          "<|unknown|>", "<|im_end"]
    # code
    t += [CODE[:300], 'print("hello")\n', "for i in range(10):\n    print(i)\n",
          '{"a": [1, 2, 3], "b": null}']
    # longer text and long runs
    t += [ENGLISH, MULTILINGUAL, "a" * 300, "ab" * 200, "9" * 50, "!" * 40, " \n" * 20]
    # words whose last merge the ignore_merges variant removes
    t += ["the model is the assistant", " the", "thing", "assistant", "singing ping"]
    t += [""]
    return t


def invalid_utf8_cases():
    return [b"\xff", b"abc\x80def", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf",
            b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x80\x80\x80",
            b"ok\xe2\x82\xacok\xe2\x82", b"<|im_end|>\xff", b"\xe2\x82 x", b"a\xc3\x28b",
            b"\xf0\x9f\x91\x8d\xf0\x9f", b"\xfe\xfe\xff\xff", b"hello \xe4\xbd world"]


def special_off_texts():
    return ["<|im_start|>", "hello <|im_end|> world", "<|im_start|>user<|im_sep|>hi<|im_end|>",
            "  <|endoftext|>  ", "<|dummy_85|>x", "plain text"]


def encode_goldens(tok, texts, invalid, special_off):
    out = []

    def add(text, allow_special, raw=None):
        tok.encode_special_tokens = not allow_special
        ids = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        case = {"allow_special": allow_special, "ids": ids}
        if raw is not None:
            case["bytes_hex"] = raw.hex()
        else:
            case["text"] = text
        out.append(case)

    for text in texts:
        add(text, True)
    for raw in invalid:
        # Mirrors the documented C++ behaviour: invalid UTF-8 is repaired with U+FFFD first.
        add(raw.decode("utf-8", errors="replace"), True, raw=raw)
    for text in special_off:
        add(text, False)
    return out


def decode_goldens(tok, texts, seed):
    rng = random.Random(seed)
    cases = []
    vocab_size = max(tok.get_vocab().values()) + 1

    def add(ids, skip):
        cases.append({"ids": ids, "skip_special": skip,
                      "text": tok.decode(ids, skip_special_tokens=skip)})

    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        add(ids, False)
        add(ids, True)
    # Cut multi-byte characters: prefixes and suffixes of the encodings of non-ASCII text.
    for text in ["你好", "👍", "👨‍👩‍👧", "é", "日本語", "a你b"]:
        ids = tok.encode(text, add_special_tokens=False).ids
        for k in range(1, len(ids)):
            add(ids[:k], False)
            add(ids[k:], False)
    # Random id sequences, with special tokens mixed in.
    for _ in range(40):
        ids = [rng.randrange(vocab_size) for _ in range(rng.randint(1, 12))]
        add(ids, rng.random() < 0.5)
    add([], False)
    return cases


CONVERSATIONS = [
    [{"role": "system", "content": "You are a helpful assistant"},
     {"role": "user", "content": "Pytorch is the best library!"},
     {"role": "assistant", "content": "Yes, it is!"}],
    [{"role": "user", "content": "Write a loop in Python."},
     {"role": "assistant", "content": "for i in range(3):\n    print(i)"},
     {"role": "user", "content": "Now   in C++?\nThanks."},
     {"role": "assistant", "content": "for (int i = 0; i < 3; ++i) {\n  printf(\"%d\", i);\n}"}],
    [{"role": "user", "content": "你好！Say hi in 3 languages 👋"}],
    [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And 10*10?"}],
    [{"role": "user", "content": ""}, {"role": "assistant", "content": "Empty question."}],
]

# Content with whitespace next to the control tokens: HF's lstrip/rstrip swallows it, align keeps
# it. Recorded so the test can show the difference is real and deliberate.
WHITESPACE_CONVERSATIONS = [
    [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "\nhello\n"}],
]


def chat_goldens(model_dir, tok):
    import transformers
    # TokenizersBackend runs tokenizer.json as written. AutoTokenizer would build the class named
    # in tokenizer_config.json (GPT2Tokenizer, as in microsoft/phi-4), and transformers 5.23's
    # GPT2Tokenizer replaces the file's Split(cl100k) pre-tokenizer with GPT-2's ByteLevel regex:
    # "3.14159" then splits as "14159" instead of "141" "59". Report it, then avoid it.
    auto = transformers.AutoTokenizer.from_pretrained(model_dir)
    if auto.encode("3.14159", add_special_tokens=False) != tok.encode("3.14159").ids:
        print(f"note: AutoTokenizer ({type(auto).__name__}) ignores tokenizer.json's "
              f"pre-tokenizer: {auto.backend_tokenizer.pre_tokenizer}", file=sys.stderr)
    hf = transformers.TokenizersBackend.from_pretrained(model_dir)
    # transformers must agree with tokenizers on plain text, or the chat goldens mean nothing.
    for text in ["hello world", "<|im_start|>user<|im_sep|>x<|im_end|>", ENGLISH, MULTILINGUAL]:
        a = hf.encode(text, add_special_tokens=False)
        b = tok.encode(text, add_special_tokens=False).ids
        assert a == b, (text, a, b)

    def ids_of(messages, gen):
        r = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen)
        if hasattr(r, "keys"):
            r = r["input_ids"]
        return list(r)

    cases = []
    for messages in CONVERSATIONS:
        for gen in (False, True):
            rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            cases.append({"messages": messages, "add_generation_prompt": gen,
                          "rendered": rendered, "ids": ids_of(messages, gen), "hf_equal": True})
    for messages in WHITESPACE_CONVERSATIONS:
        cases.append({"messages": messages, "add_generation_prompt": False,
                      "ids": ids_of(messages, False), "hf_equal": False})
    return cases


# ---------------------------------------------------------------------------------------------
# Unicode sweep: how HF's pre-tokenizers split each code point in a few probe contexts, stored as
# ranges of equal signature, so the test can check PCRE2 against Oniguruma on all of Unicode.

PROBES = ["a{c}b", "1{c}2", " {c}x", "{c}{c}!", "x{c} ", "'{c}x", "\n{c}\n", "{c} \n"]


def unicode_sweep(pre_tok, signatures):
    """Returns [[first_code_point, signature_index], ...]; a range ends where the next begins.

    A signature lists, per probe, the byte lengths of the pieces HF's pre-tokenizer makes (the
    length of a piece's byte-level string is its length in UTF-8 bytes, prefix space included).
    """
    ranges = []
    prev = None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        sig = "|".join(".".join(str(len(piece)) for piece, _ in
                                pre_tok.pre_tokenize_str(probe.format(c=c)))
                       for probe in PROBES)
        if sig != prev:
            if sig not in signatures:
                signatures.append(sig)
            ranges.append([cp, signatures.index(sig)])
            prev = sig
    return ranges


def hf_word_chars(tok, single_word_token):
    """Code points HF's single_word check counts as word characters (Rust regex \\w): those that
    stop `single_word_token` from matching right before them."""
    mask = tok.token_to_id(single_word_token)
    return {cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and
            tok.encode(single_word_token + chr(cp), add_special_tokens=False).ids[0] != mask}


def to_ranges(points):
    out = []
    for cp in sorted(points):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def unicode_delta(tok):
    """Prints the letters, numbers and word characters HF knows but Unicode 14 (Python 3.11's
    unicodedata, and PCRE2 10.42) does not, as PCRE2 class items for data/onig_compat.cc and
    data/added_tokens.cc."""
    import unicodedata

    def pieces(text):
        return len(tok.pre_tokenizer.pre_tokenize_str(text))

    def ranges(points):
        return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}"
                       for a, b in to_ranges(points))

    letters, numbers, u14_letters, u14_numbers = set(), set(), set(), set()
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if pieces("a" + c) == 1:  # joins a letter run
            letters.add(cp)
        if pieces("1" + c) == 1:  # joins a number run
            numbers.add(cp)
        category = unicodedata.category(c)
        if category.startswith("L"):
            u14_letters.add(cp)
        if category.startswith("N"):
            u14_numbers.add(cp)
    print(f"unicodedata {unicodedata.unidata_version}")
    print("letters only HF knows:", ranges(letters - u14_letters))
    print("numbers only HF knows:", ranges(numbers - u14_numbers))
    print("Unicode 14 letters HF rejects:", ranges(u14_letters - letters) or "none")
    print("Unicode 14 numbers HF rejects:", ranges(u14_numbers - numbers) or "none")
    # \\w: Alphabetic, marks, Nd, Pc, ZWJ/ZWNJ. unicodedata has no Alphabetic property, so the
    # delta also lists Unicode 14 Other_Alphabetic symbols (circled letters), which PCRE2 has.
    tok.add_tokens([AddedToken("<mask>", single_word=True, normalized=False)])
    word = hf_word_chars(tok, "<mask>")
    u14_word = {cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and (
        unicodedata.category(chr(cp))[0] in "LM" or unicodedata.category(chr(cp)) in
        ("Nd", "Pc", "Nl") or cp in (0x200C, 0x200D))}
    print("word characters beyond Unicode 14 L, M, Nd, Nl, Pc:", ranges(word - u14_word))
    print("Unicode 14 word characters HF rejects:", ranges(u14_word - word) or "none")


def phi4_from_tiktoken(ranks_path, out):
    """Builds a Phi-4-equivalent tokenizer directory (cl100k_base ranks + Phi-4's pipeline and
    special tokens) from a cl100k_base.tiktoken file, for benchmarks and spot checks with the
    real vocabulary. Not used by the tests (the file is not shipped)."""
    import base64

    ranks = {}
    with open(ranks_path, "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    byte_char = {b: chr(c) for b, c in zip(
        list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100)),
        list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100)))}
    n = 0
    for b in range(256):
        if b not in byte_char:
            byte_char[b] = chr(256 + n)
            n += 1

    def to_str(token):
        return "".join(byte_char[b] for b in token)

    def split_at(token, max_rank):  # BPE on `token` with merges of rank < max_rank only
        parts = [bytes([b]) for b in token]
        while True:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < max_rank and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                return parts
            i = best[1]
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]

    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            parts = split_at(token, rank)
            assert len(parts) == 2, (token, parts)
            merges.append([to_str(parts[0]), to_str(parts[1])])
    tok = Tokenizer(models.BPE(vocab={to_str(t): r for t, r in ranks.items()},
                               merges=[tuple(m) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CL100K), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, lstrip=True, rstrip=True, normalized=False, special=True)
                            for s in phi4_special_tokens()])
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    assert tok.token_to_id("<|im_start|>") == 100264 and tok.token_to_id("<|dummy_85|>") == 100349
    assert tok.encode("hello world").ids == [15339, 1917]
    print(f"wrote {out}/tokenizer.json ({len(ranks)} tokens, {len(merges)} merges)", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                      "golden", "tokenizer"))
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--unicode-delta", action="store_true",
                        help="print the class deltas for data/onig_compat.cc and exit")
    parser.add_argument("--phi4-from-tiktoken", nargs=2, metavar=("RANKS", "OUT_DIR"),
                        help="build a Phi-4-equivalent tokenizer.json from cl100k_base.tiktoken")
    args = parser.parse_args()
    if args.phi4_from_tiktoken:
        phi4_from_tiktoken(*args.phi4_from_tiktoken)
        return
    if args.unicode_delta:
        tok, _ = train_main()
        unicode_delta(tok)
        return
    out = os.path.abspath(args.out)
    if os.path.isdir(out) and not args.skip_sweep:
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)

    tok, base = train_main()
    main_dir = write_main(tok, out)
    legacy_dir = write_legacy(tok, base, out)
    ignore_dir, removed = write_ignore_merges(tok, out)

    main_tok = Tokenizer.from_file(os.path.join(main_dir, "tokenizer.json"))
    legacy_tok = Tokenizer.from_file(os.path.join(legacy_dir, "tokenizer.json"))
    ignore_tok = Tokenizer.from_file(os.path.join(ignore_dir, "tokenizer.json"))

    texts = encode_texts()
    invalid = invalid_utf8_cases()
    save_json(os.path.join(out, "encode_main.json"),
              encode_goldens(main_tok, texts, invalid, special_off_texts()))
    legacy_texts = texts + ["[CLS] my name is <mask> [SEP]", "<mask>", "a<mask>b", "x <mask>.",
                            "[SEP][SEP]", "[SEP]  x", "[SE P]", "[SEP", "hello world",
                            "say hello world!", "hello  world", "x[SEP] x", "sing ing", "ingot",
                            "text<|endoftext|>  more", "é<mask>", "_<mask>", "<mask>\u0301",
                            "<mask>-"]
    save_json(os.path.join(out, "encode_legacy.json"),
              encode_goldens(legacy_tok, legacy_texts, invalid[:4],
                             special_off_texts() + ["[CLS] x [SEP] <mask>"]))
    # Also record what the same file gives with ignore_merges false, so the flag is tested both ways.
    merging = json.loads(ignore_tok.to_str())
    merging["model"]["ignore_merges"] = False
    merging_tok = Tokenizer.from_str(json.dumps(merging))
    ignore_cases = encode_goldens(ignore_tok, texts, [], [])
    for case in ignore_cases:
        case["ids_merging"] = merging_tok.encode(case["text"], add_special_tokens=False).ids
    save_json(os.path.join(out, "encode_ignore_merges.json"), ignore_cases)

    missing_dir = write_missing_bytes(tok, out)
    missing_tok = Tokenizer.from_file(os.path.join(missing_dir, "tokenizer.json"))
    assert missing_tok.encode("\x04").ids == [] and missing_tok.encode("-\x04>").tokens == ["->"]
    missing_cases = encode_goldens(missing_tok, missing_bytes_texts(), invalid,
                                   ["<|im_start|>\x04<|im_end|>"])
    unk = json.loads(missing_tok.to_str())
    unk["model"]["unk_token"] = UNK_FOR_MISSING
    for key, fuse in (("ids_unk", False), ("ids_unk_fused", True)):
        unk["model"]["fuse_unk"] = fuse
        unk_tok = Tokenizer.from_str(json.dumps(unk))
        for case in missing_cases:
            unk_tok.encode_special_tokens = not case["allow_special"]
            text = case.get("text")
            if text is None:
                text = bytes.fromhex(case["bytes_hex"]).decode("utf-8", errors="replace")
            case[key] = unk_tok.encode(text, add_special_tokens=False).ids
    save_json(os.path.join(out, "encode_missing_bytes.json"), missing_cases)
    save_json(os.path.join(out, "decode_missing_bytes.json"),
              decode_goldens(missing_tok, ["a\x04b", "-\x04>", "\U00040041x", "hello world"], 9))

    decode_texts = ["hello world", "你好，世界 👍", "<|im_start|>user<|im_sep|>hi<|im_end|>",
                    "  <|endoftext|>  x", "tab\there\r\n"]
    save_json(os.path.join(out, "decode_main.json"), decode_goldens(main_tok, decode_texts, 7))
    save_json(os.path.join(out, "decode_legacy.json"),
              decode_goldens(legacy_tok, decode_texts + ["[CLS] say hello world [SEP]"], 8))
    save_json(os.path.join(out, "chat_main.json"), chat_goldens(main_dir, main_tok))

    if not args.skip_sweep:
        signatures = []
        main_ranges = unicode_sweep(main_tok.pre_tokenizer, signatures)
        legacy_ranges = unicode_sweep(legacy_tok.pre_tokenizer, signatures)
        save_json(os.path.join(out, "unicode_classes.json"), {
            "probes": PROBES, "signatures": signatures, "main": main_ranges,
            "legacy": legacy_ranges,
            "word_chars": to_ranges(hf_word_chars(legacy_tok, "<mask>"))})
    print(f"wrote {out}: base vocab {base}, removed merges {removed}", file=sys.stderr)


if __name__ == "__main__":
    main()
