# bitnet_add_library(name SOURCES... [DEPENDS targets...] [LIBS targets...])
#
# A static library of the compiler, linked against the libMLIR.so and
# libLLVM.so dylibs (never against static MLIR/LLVM archives, so that two
# copies of LLVM's globals can never meet in one process).
function(bitnet_add_library name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;LIBS" ${ARGN})
  add_library(${name} STATIC ${ARG_UNPARSED_ARGUMENTS})
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(ARG_DEPENDS)
    add_dependencies(${name} ${ARG_DEPENDS})
  endif()
  target_link_libraries(${name} PUBLIC ${ARG_LIBS} MLIR LLVM)
  bitnet_export_library(${name})
endfunction()

# bitnet_export_library(name): installs the static library `name` and adds it
# to the BitNetCompiler CMake package (BitNetCompiler::name), whose headers
# are installed under include/.
function(bitnet_export_library name)
  target_include_directories(${name} INTERFACE
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${name} INTERFACE cxx_std_17)
  install(TARGETS ${name} EXPORT BitNetCompilerTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT compiler_dev)
endfunction()

# bitnet_add_tool(name SOURCES... [LIBS targets...])
function(bitnet_add_tool name)
  cmake_parse_arguments(ARG "" "" "LIBS" ${ARGN})
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${BITNET_TOOLS_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} MLIR LLVM)
  # Installed tools find libLLVM and libMLIR where the distribution keeps
  # them (they are not on the default search path).
  set_target_properties(${name} PROPERTIES INSTALL_RPATH "${LLVM_LIBRARY_DIR}")
endfunction()
