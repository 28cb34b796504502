# `cpack` makes a relocatable tarball: bin/ holds lathe, lathe_tests and lathe_bench; lib/ holds
# their non-system shared libraries (HDF5, libaec, libsz, libcurl's closure, Google Benchmark, ...).
# Executables find lib/ through RPATH $ORIGIN/../lib. The CUDA runtime is linked statically; glibc
# and the NVIDIA driver come from the host.
set(CMAKE_INSTALL_RPATH "$ORIGIN/../lib")
set_target_properties(lathe PROPERTIES INSTALL_RPATH "$ORIGIN/../lib")
install(TARGETS lathe RUNTIME DESTINATION bin)
set(_lathe_exes lathe)
if(TARGET lathe_tests)
  set_target_properties(lathe_tests PROPERTIES INSTALL_RPATH "$ORIGIN/../lib")
  install(TARGETS lathe_tests RUNTIME DESTINATION bin)
  list(APPEND _lathe_exes lathe_tests)
endif()
if(TARGET lathe_bench)
  set_target_properties(lathe_bench PROPERTIES INSTALL_RPATH "$ORIGIN/../lib")
  install(TARGETS lathe_bench RUNTIME DESTINATION bin)
  list(APPEND _lathe_exes lathe_bench)
endif()
install(PROGRAMS bench/gpu_check.sh DESTINATION bin)

# Copy each executable's shared-library closure, less what every Linux or GPU host has.
set(_lathe_files "")
foreach(exe IN LISTS _lathe_exes)
  list(APPEND _lathe_files "$<TARGET_FILE:${exe}>")
endforeach()
install(CODE "
  file(GET_RUNTIME_DEPENDENCIES
    EXECUTABLES ${_lathe_files}
    RESOLVED_DEPENDENCIES_VAR deps
    UNRESOLVED_DEPENDENCIES_VAR missing
    PRE_EXCLUDE_REGEXES \"^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libresolv|libutil|libcuda|libnvidia|libcublas|libcublasLt|libcudart)\\\\.so.*\"
    POST_EXCLUDE_REGEXES \"^/lib(64)?/.*(ld-linux|libc\\\\.so|libm\\\\.so|libdl|librt|libpthread)\")
  foreach(dep IN LISTS deps)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib\" TYPE SHARED_LIBRARY FOLLOW_SYMLINK_CHAIN FILES \"\${dep}\")
  endforeach()
")

set(CPACK_GENERATOR TGZ)
set(CPACK_PACKAGE_NAME lathe)
set(CPACK_PACKAGE_FILE_NAME "lathe-${PROJECT_VERSION}-linux-x86_64")
include(CPack)
