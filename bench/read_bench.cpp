// The data path: TableReader reading a whole table block by block, next to the machine's ceilings
// measured in the same run. Two synthetic files of 2M rows x 16 float32 columns (Lathe's columnar
// layout, values with two decimals as a real table has), written once per process into a temporary
// folder and read back right away, so they sit in the page cache:
//   contiguous  16 contiguous, unfiltered datasets (the "pread (contiguous)" path);
//   chunked     16 unfiltered datasets in chunks of 65536 rows, as `lathe synth --compression 0`
//               writes them (the "raw chunks" path);
//   deflate     16 datasets in chunks of 65536 rows with shuffle + deflate level 4, as
//               `lathe import` writes them (the "raw chunks, parallel inflate" path).
// Benchmarks (bytes/s count the float32 bytes delivered, 128 MiB per pass; rows/s the rows; one
// untimed pass first, so the timing is of the steady state):
//   BM_ReadRawPread/T             ceiling: pread of the contiguous file's data bytes, block by
//                                 block (65536 rows) into one block buffer, the block's 16 column
//                                 reads over T threads (0: all);
//   BM_ReadTableUncompressed/D    TableReader on the contiguous file, direct paths on (D=1) or
//                                 HDF5's hyperslab read (D=0);
//   BM_ReadTableChunked/D         TableReader on the unfiltered chunked file, direct paths on (D=1)
//                                 or HDF5's hyperslab read (D=0);
//   BM_InflateSingleThread/L      the baseline: inflating every chunk of the deflate file on one
//                                 thread with libdeflate (L=0) or zlib (L=1), unshuffle excluded;
//   BM_ReadTableDeflate/T/D       TableReader on the deflate file with T decode threads (0: all),
//                                 direct paths on (D=1) or HDF5's hyperslab read (D=0).
#include <benchmark/benchmark.h>
#include <hdf5.h>
#include <omp.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "bench/bench_support.h"
#include "io/chunk_filters.h"
#include "io/hdf5_handle.h"
#include "io/read_only_file.h"
#include "io/table_reader.h"

namespace lathe::bench {
namespace {

constexpr std::int64_t kRows = 2 << 20;
constexpr int kColumns = 16;
constexpr hsize_t kChunkRows = 65536;

// The two files, written on first use and removed when the process ends.
struct ReadBenchFiles {
  std::filesystem::path folder, contiguous, chunked, deflate;

  ReadBenchFiles() {
    folder =
        std::filesystem::temp_directory_path() / ("lathe_read_bench_" + std::to_string(::getpid()));
    std::filesystem::create_directories(folder);
    contiguous = folder / "contiguous.h5";
    chunked = folder / "chunked.h5";
    deflate = folder / "deflate.h5";
    std::mt19937 rng(6);
    std::normal_distribution<float> normal(0, 1);
    std::vector<std::vector<float>> columns(kColumns, std::vector<float>(kRows));
    for (int c = 0; c < kColumns; ++c) {
      const float scale = std::pow(10.0f, static_cast<float>(c % 4));
      for (auto& v : columns[c]) v = std::round(normal(rng) * scale * 100.0f) / 100.0f;
    }
    write(contiguous, columns, Storage::contiguous);
    write(chunked, columns, Storage::chunked);
    write(deflate, columns, Storage::deflate);
  }
  ~ReadBenchFiles() {
    std::error_code ec;
    std::filesystem::remove_all(folder, ec);
  }

  enum class Storage { contiguous, chunked, deflate };

  static void write(const std::filesystem::path& path,
                    const std::vector<std::vector<float>>& columns, Storage storage) {
    const std::string where = path.string();
    h5::H5Handle file = h5::file_handle(
        LATHE_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), where));
    const hsize_t rows = kRows;
    h5::H5Handle space =
        h5::dataspace_handle(LATHE_H5_CHECK(H5Screate_simple(1, &rows, nullptr), where));
    h5::H5Handle dcpl = h5::plist_handle(LATHE_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), where));
    if (storage != Storage::contiguous) LATHE_H5_CHECK(H5Pset_chunk(dcpl.get(), 1, &kChunkRows), where);
    if (storage == Storage::deflate) {
      LATHE_H5_CHECK(H5Pset_shuffle(dcpl.get()), where);
      LATHE_H5_CHECK(H5Pset_deflate(dcpl.get(), 4), where);
    }
    std::vector<std::string> names;
    for (int c = 0; c < kColumns; ++c) {
      names.push_back("c" + std::to_string(c));
      h5::H5Handle d = h5::dataset_handle(
          LATHE_H5_CHECK(H5Dcreate2(file.get(), names.back().c_str(), H5T_IEEE_F32LE, space.get(),
                                    H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                         where));
      LATHE_H5_CHECK(
          H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, columns[c].data()),
          where);
    }
    h5::write_string_attribute(file.get(), "lathe_columns", names, where);
  }
};

const ReadBenchFiles& files() {
  static const ReadBenchFiles instance;
  return instance;
}

constexpr std::int64_t kTableBytes = kRows * kColumns * static_cast<std::int64_t>(sizeof(float));

void set_table_counters(benchmark::State& state) { set_block_counters(state, kRows, kColumns); }

// Reads the whole table in the reader's blocks, as the streaming commands do.
void read_table(benchmark::State& state, const std::filesystem::path& path, bool direct,
                int threads) {
  TableReadOptions options;
  options.direct_read = direct;
  options.decode_threads = threads;
  TableReader reader(path, options);
  state.SetLabel(reader.storage().front().read_path);
  std::vector<float> block(static_cast<std::size_t>(reader.block_rows() * kColumns));
  auto pass = [&] {
    for (std::int64_t first = 0; first < reader.rows(); first += reader.block_rows()) {
      const std::int64_t n = std::min(reader.block_rows(), reader.rows() - first);
      reader.read_block(first, n,
                        std::span<float>(block.data(), static_cast<std::size_t>(n * kColumns)));
      benchmark::DoNotOptimize(block.data());
    }
  };
  pass();  // warm: the thread team, the reader's buffers, HDF5's chunk cache
  for (auto _ : state) pass();
  set_table_counters(state);
}

void BM_ReadRawPread(benchmark::State& state) {
  const auto& f = files();
  // Where each column's bytes lie in the file.
  std::vector<haddr_t> offsets;
  {
    h5::H5Handle file = h5::file_handle(H5Fopen(f.contiguous.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    for (int c = 0; c < kColumns; ++c) {
      h5::H5Handle d =
          h5::dataset_handle(H5Dopen2(file.get(), ("c" + std::to_string(c)).c_str(), H5P_DEFAULT));
      offsets.push_back(H5Dget_offset(d.get()));
    }
  }
  const ReadOnlyFile file(f.contiguous);
  const int threads = state.range(0) > 0 ? static_cast<int>(state.range(0)) : omp_get_max_threads();
  // The same deliveries as the reader's: blocks of kChunkRows rows, column after column, into one
  // block-sized buffer.
  constexpr std::int64_t kBlockRows = static_cast<std::int64_t>(kChunkRows);
  std::vector<float> block(static_cast<std::size_t>(kBlockRows * kColumns));
  bool ok = true;
  auto pass = [&] {
    for (std::int64_t first = 0; first < kRows; first += kBlockRows) {
      const std::int64_t n = std::min(kBlockRows, kRows - first);
#pragma omp parallel for num_threads(threads) reduction(&& : ok)
      for (int c = 0; c < kColumns; ++c) {
        ok = file.read_exactly(block.data() + c * n, static_cast<std::size_t>(n) * sizeof(float),
                               offsets[static_cast<std::size_t>(c)] + first * sizeof(float)) &&
             ok;
      }
      benchmark::DoNotOptimize(block.data());
    }
  };
  pass();  // warm: the thread team and the buffer
  for (auto _ : state) pass();
  if (!ok) state.SkipWithError("short read");
  set_table_counters(state);
}

void BM_ReadTableUncompressed(benchmark::State& state) {
  read_table(state, files().contiguous, state.range(0) != 0, 0);
}

void BM_ReadTableChunked(benchmark::State& state) {
  read_table(state, files().chunked, state.range(0) != 0, 0);
}

void BM_InflateSingleThread(benchmark::State& state) {
  const auto& f = files();
  // Every stored chunk of the deflate file, fetched once.
  std::vector<std::vector<unsigned char>> chunks;
  {
    h5::H5Handle file = h5::file_handle(H5Fopen(f.deflate.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    for (int c = 0; c < kColumns; ++c) {
      h5::H5Handle d =
          h5::dataset_handle(H5Dopen2(file.get(), ("c" + std::to_string(c)).c_str(), H5P_DEFAULT));
      for (hsize_t offset = 0; offset < static_cast<hsize_t>(kRows); offset += kChunkRows) {
        hsize_t size = 0;
        H5Dget_chunk_storage_size(d.get(), &offset, &size);
        std::uint32_t mask = 0;
        chunks.emplace_back(size);
        H5Dread_chunk(d.get(), H5P_DEFAULT, &offset, &mask, chunks.back().data());
      }
    }
  }
  const bool zlib = state.range(0) != 0;
  state.SetLabel(zlib ? "zlib" : "libdeflate");
  std::vector<unsigned char> out(kChunkRows * sizeof(float));
  Inflater inflater;
  bool ok = true;
  for (auto _ : state) {
    for (const auto& chunk : chunks) {
      if (zlib) {
        uLongf size = out.size();
        ok = uncompress(out.data(), &size, chunk.data(), chunk.size()) == Z_OK && ok;
      } else {
        ok = inflater.inflate_exactly(chunk, out) && ok;
      }
      benchmark::DoNotOptimize(out.data());
    }
  }
  if (!ok) state.SkipWithError("a chunk did not inflate");
  set_table_counters(state);
}

void BM_ReadTableDeflate(benchmark::State& state) {
  read_table(state, files().deflate, state.range(1) != 0, static_cast<int>(state.range(0)));
}

BENCHMARK(BM_ReadRawPread)
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.2);
BENCHMARK(BM_ReadTableUncompressed)
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.2);
BENCHMARK(BM_ReadTableChunked)
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.2);
BENCHMARK(BM_InflateSingleThread)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.2);
BENCHMARK(BM_ReadTableDeflate)
    ->Args({1, 1})
    ->Args({2, 1})
    ->Args({0, 1})
    ->Args({0, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.2);

}  // namespace
}  // namespace lathe::bench
