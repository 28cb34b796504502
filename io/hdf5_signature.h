// HDF5's signature: the eight bytes every HDF5 file Lathe meets starts with. Looked for before HDF5
// opens a file, where HDF5 itself would take a CSV or any other file for a damaged HDF5 one.
#pragma once

#include <filesystem>
#include <string_view>

namespace lathe {

// Whether `head`, the first bytes of a file, starts with HDF5's signature ("\x89HDF\r\n\x1a\n").
// A userblock moves the signature (to byte 512, 1024, ...), which this does not look for: no
// writer of the files Lathe reads leaves one.
bool starts_with_hdf5_signature(std::string_view head);

// starts_with_hdf5_signature of the file at `path`'s first bytes; false for a file that cannot be
// opened or is shorter than the signature.
bool has_hdf5_signature(const std::filesystem::path& path);

}  // namespace lathe
