# Documentation, examples and the Debian package.
#
#   cmake --install build --prefix DIR   installs everything under DIR
#   cpack --config build/CPackConfig.cmake -B DIR
#                                        writes DIR/bitnet-mlir_<version>-1_<arch>.deb
#
# The package holds what `cmake --install` installs, under /usr: the tools,
# the runtime (shared and static), the headers and CMake/pkg-config files,
# the compiler's static libraries, the Python package (in
# /usr/lib/python3/dist-packages, where Debian's python3 finds it) and this
# documentation. Its Depends: come from dpkg-shlibdeps (libLLVM, libMLIR,
# ONNX, protobuf, cJSON, PCRE2, libc) plus a C compiler, which bitnet-compile
# runs to link the shared objects it writes.

install(FILES
  ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT doc)
install(FILES ${PROJECT_SOURCE_DIR}/runtime/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/runtime COMPONENT doc)
install(FILES ${PROJECT_SOURCE_DIR}/python_bindings/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/python COMPONENT doc)
install(FILES ${PROJECT_SOURCE_DIR}/models/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/models COMPONENT doc)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT doc)
# bitnet-serve's replicas behind HAProxy and on Kubernetes (the README links
# deploy/README.md).
install(FILES
  ${PROJECT_SOURCE_DIR}/deploy/README.md
  ${PROJECT_SOURCE_DIR}/deploy/haproxy.cfg
  ${PROJECT_SOURCE_DIR}/deploy/kubernetes.yaml
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/deploy COMPONENT doc)
# The one-layer example the README compiles and runs, with its input.
install(FILES
  ${PROJECT_SOURCE_DIR}/examples/bitlinear.mlir
  ${PROJECT_SOURCE_DIR}/examples/bitlinear_x.npy
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT doc)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bitnet-mlir)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Compiler and runtime for BitNet b1.58 models")
set(CPACK_PACKAGE_DESCRIPTION
    "bitnet-compile turns BitNet b1.58 models (ONNX, GGUF, Hugging Face checkpoints) into shared objects of kernels specialised for one model and one machine; libbitnet_rt, bitnet-run and bitnet-generate load and run them. Includes the C runtime's headers, CMake and pkg-config files, the compiler library and the bitnet_mlir Python package.")
set(CPACK_PACKAGE_CONTACT "bitnet-mlir developers <bitnet-mlir@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libbitnet_rt.so.0 is in the package itself: dpkg-shlibdeps finds it in the
# build tree.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/runtime)
# With the compiler: a C compiler, which bitnet-compile runs to link, and
# libLLVM, which the tools load through /usr/lib/llvm-<major>/lib, where it is
# a symbolic link that llvm-<major>-dev owns: dpkg-shlibdeps finds no shlibs
# for it there.
if(LLVM_VERSION_MAJOR)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "gcc | c-compiler, libllvm${LLVM_VERSION_MAJOR}")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3 (>= 3.11), python3-numpy")
# gzip: quick to write, and read by every dpkg.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_SOURCE_IGNORE_FILES "/build/;/build-.*/;/\\\\.git/")
include(CPack)
