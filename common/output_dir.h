// The folders a command reads a model from and writes its outputs to, checked where they enter so
// that a wrong path is named with its key: "model.path: /x: no such directory".
#pragma once

#include <string>

namespace align {

// Throws InputError "<key>: <path>: no such directory" or "... is a file, expected a directory".
void require_directory(const std::string& path, const std::string& key);

// Creates `path` (and its parents) unless it is a directory already. Throws InputError
// "<key>: <path> exists and is not a directory", IoError when it cannot be created.
void create_output_dir(const std::string& path, const std::string& key);

// "<size>-<FNV-1a 64 of the bytes, hex>": cheap, and changes with any edit of the file. Throws
// IoError when it cannot be read.
std::string file_fingerprint(const std::string& path);

// Removes the temporary files that AtomicFile writers killed mid-write left under `dir`
// (`<name>.tmp.<pid>` whose process no longer runs), recursively. Returns how many it removed.
int remove_stale_temp_files(const std::string& dir);

}  // namespace align
