// ParquetRows for a build configured with -DALIGN_PARQUET=OFF (no pyarrow on the machine): every
// Parquet file is refused, naming it and the option.
#include "common/error.h"
#include "data/parquet_rows.h"

namespace align {

struct ParquetRows::Impl {};

ParquetRows::ParquetRows(const std::string& path) {
  throw InputError(path +
                   ": this build of align reads no Parquet (configured with -DALIGN_PARQUET=OFF); "
                   "rebuild after scripts/setup.sh, which installs the pyarrow it reads with, or "
                   "convert the dataset to JSONL");
}

ParquetRows::~ParquetRows() = default;

int64_t ParquetRows::num_rows() const {
  return 0;
}

const std::vector<ParquetColumn>& ParquetRows::columns() const {
  static const std::vector<ParquetColumn> none;
  return none;
}

bool ParquetRows::next(nlohmann::json*) {
  return false;
}

int64_t ParquetRows::next_row() const {
  return 0;
}

}  // namespace align
