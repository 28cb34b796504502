# The test examples.installed_package, run as `cmake -P` (see examples/CMakeLists.txt): installs the
# build into a fresh prefix, builds examples/consumer against that prefix alone, trains a model
# with the installed `lathe` and scores it with the consumer's score_rows. Any failing step fails.
#   -DLATHE_SOURCE_DIR -DLATHE_BUILD_DIR: the tree that was built, and where it was built
#   -DWORK_DIR: emptied, then holds the prefix, the consumer's build and the data
#   -DGENERATOR -DMAKE_PROGRAM -DCXX_COMPILER -DBUILD_TYPE: the consumer is built as Lathe was
cmake_minimum_required(VERSION 3.25)
foreach(var LATHE_SOURCE_DIR LATHE_BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT ${var})
    message(FATAL_ERROR "check_installed_package.cmake needs -D${var}=...")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}): ${ARGN}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# True when `path` is `dir` or lies under it.
function(path_is_under path dir out)
  cmake_path(IS_PREFIX dir "${path}" NORMALIZE result)
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# Nothing from the environment may point the install or the consumer somewhere else.
foreach(var DESTDIR CMAKE_PREFIX_PATH Lathe_DIR Lathe_ROOT CPATH CPLUS_INCLUDE_PATH)
  unset(ENV{${var}})
endforeach()

file(REAL_PATH "${LATHE_SOURCE_DIR}" source_dir)
file(REAL_PATH "${LATHE_BUILD_DIR}" build_dir)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
file(REAL_PATH "${WORK_DIR}" work_dir)
set(prefix "${work_dir}/prefix")
set(consumer_build "${work_dir}/consumer-build")

run_step("cmake --install" "${CMAKE_COMMAND}" --install "${build_dir}" --prefix "${prefix}")

set(consumer_args -S "${source_dir}/examples/consumer" -B "${consumer_build}" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
if(BUILD_TYPE)
  list(APPEND consumer_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()
if(MAKE_PROGRAM)
  list(APPEND consumer_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
run_step("configuring examples/consumer" "${CMAKE_COMMAND}" ${consumer_args})

# The package came from the fresh prefix ...
file(STRINGS "${consumer_build}/CMakeCache.txt" lathe_dir_line REGEX "^Lathe_DIR:")
string(REGEX REPLACE "^Lathe_DIR:[A-Z]*=" "" lathe_dir "${lathe_dir_line}")
path_is_under("${lathe_dir}" "${prefix}" from_prefix)
if(NOT from_prefix)
  message(FATAL_ERROR
    "find_package(Lathe) found '${lathe_dir}', not the package installed under ${prefix}")
endif()
# ... and names nothing in the source or build tree.
file(GLOB package_files "${lathe_dir}/*.cmake")
foreach(file IN LISTS package_files)
  file(READ "${file}" text)
  foreach(tree "${source_dir}/" "${build_dir}/")
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR
        "${file} names ${tree}: the installed package must not depend on the tree it was built in")
    endif()
  endforeach()
endforeach()

# The installed headers are the public API alone: they include the standard library and each other,
# nothing of Lathe's internal headers (io/, runtime/, ...), which are not installed.
file(GLOB installed_headers "${prefix}/include/lathe/*.h")
foreach(header scorer.h error.h)
  if(NOT EXISTS "${prefix}/include/lathe/${header}")
    message(FATAL_ERROR "cmake --install did not install include/lathe/${header}")
  endif()
endforeach()
foreach(header IN LISTS installed_headers)
  file(STRINGS "${header}" includes REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS includes)
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*<(lathe/[a-z_]+\\.h|[a-z_0-9]+)>")
      message(FATAL_ERROR "${header} includes what an installed Lathe does not ship: ${line}")
    endif()
  endforeach()
endforeach()

run_step("building examples/consumer" "${CMAKE_COMMAND}" --build "${consumer_build}")

# The consumer compiled against the installed headers only: every include directory of its compile
# lies in the prefix or outside Lathe's trees (the system's), and one of them is the prefix's.
file(READ "${consumer_build}/compile_commands.json" compile_commands)
string(JSON count LENGTH "${compile_commands}")
if(count EQUAL 0)
  message(FATAL_ERROR "examples/consumer compiled nothing")
endif()
set(saw_prefix_include FALSE)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON command GET "${compile_commands}" ${i} command)
  separate_arguments(args UNIX_COMMAND "${command}")
  set(next_is_dir FALSE)
  foreach(arg IN LISTS args)
    set(dir "")
    if(next_is_dir)
      set(dir "${arg}")
      set(next_is_dir FALSE)
    elseif(arg MATCHES "^-(I|isystem|iquote|idirafter)$")
      set(next_is_dir TRUE)
    elseif(arg MATCHES "^-(I|isystem|iquote|idirafter)(.+)$")
      set(dir "${CMAKE_MATCH_2}")
    endif()
    if(dir STREQUAL "")
      continue()
    endif()
    path_is_under("${dir}" "${prefix}" in_prefix)
    path_is_under("${dir}" "${source_dir}" in_source)
    path_is_under("${dir}" "${build_dir}" in_build)
    if(in_prefix)
      set(saw_prefix_include TRUE)
    elseif(in_source OR in_build)
      message(FATAL_ERROR
        "examples/consumer compiled with include directory ${dir}, in Lathe's source or build tree")
    endif()
  endforeach()
endforeach()
if(NOT saw_prefix_include)
  message(FATAL_ERROR
    "examples/consumer compiled without the installed include directory ${prefix}/include")
endif()

set(lathe "${prefix}/bin/lathe")
run_step("lathe synth" "${lathe}" synth --task binary --rows 2000 --features 4 --categorical 2
         --missing-rate 0.05 --out "${work_dir}/data.h5" --quiet)
run_step("lathe train" "${lathe}" train "${work_dir}/data.h5" --label label --task binary --epochs 3
         --device cpu --out "${work_dir}/model.h5" --quiet)
run_step("the consumer's score_rows" "${consumer_build}/score_rows" "${work_dir}/model.h5")
if(NOT step_output MATCHES "scored 4 rows")
  message(FATAL_ERROR "the consumer's score_rows did not score its 4 rows")
endif()
# lathe::version() is the version the package was found with.
file(STRINGS "${lathe_dir}/LatheConfigVersion.cmake" version_line REGEX "^set\\(PACKAGE_VERSION ")
string(REGEX REPLACE "^set\\(PACKAGE_VERSION \"([^\"]*)\"\\)$" "\\1" package_version "${version_line}")
if(NOT step_output MATCHES "lathe ${package_version}\n")
  message(FATAL_ERROR "the consumer's score_rows did not print lathe::version() '${package_version}'")
endif()
