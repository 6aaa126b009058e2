// GPT-2's byte-level alphabet: each of the 256 byte values is written as one printable Unicode
// character, so a BPE vocabulary of strings can hold arbitrary bytes. Printable Latin-1 bytes
// ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves; the other 68 bytes map, in byte order,
// to U+0100.. (so 0x00 -> U+0100 'Ā', 0x20 ' ' -> U+0120 'Ġ', 0x0A '\n' -> U+010A 'Ċ').
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace align {

char32_t byte_to_char(uint8_t byte);

// The byte a character of the alphabet stands for; nullopt for characters outside it.
std::optional<uint8_t> char_to_byte(char32_t c);

// Raw bytes -> their byte-level string (UTF-8).
std::string bytes_to_byte_level(std::string_view bytes);

// Byte-level string (valid UTF-8) -> raw bytes; nullopt if a character is outside the alphabet.
std::optional<std::string> byte_level_to_bytes(std::string_view token);

}  // namespace align
