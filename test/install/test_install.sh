#!/usr/bin/env bash
# Tests every way bitnet-mlir is installed and used from outside its build
# tree, from a built tree (nothing is built a second time):
#
#   1. `cmake --install` into an empty prefix: every tool, library, header,
#      package file, the Python package and the docs are there; the tools
#      start with no LD_LIBRARY_PATH; the installed compiler compiles
#      examples/bitlinear.mlir and the installed bitnet-run runs it, with the
#      build tree's result; the installed Python package does the same.
#   2. An outside CMake project (test/install/consumer) against the prefix:
#      find_package(BitNetRuntime) (shared and static) and
#      find_package(BitNetCompiler); its programs compile and run the model.
#   3. The same C file built with `pkg-config --cflags --libs bitnet_rt`.
#   4. The Debian package from CPack: its fields, and its contents extracted
#      into a scratch root (dpkg-deb -x, no root needed) compile and run the
#      model with no environment set.
#   5. `pip install --no-build-isolation ./python_bindings` into a venv with
#      the system's site packages (numpy), reusing the build tree.
#
# usage: test/install/test_install.sh BUILD_DIR [SOURCE_DIR]
# ctest runs it as `install`. Set KEEP=1 to keep the scratch directory.
set -euo pipefail

build=$(cd "${1:?usage: test_install.sh BUILD_DIR [SOURCE_DIR]}" && pwd)
src=$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
python=/usr/bin/python3
version=$(sed -n 's/^project(bitnet-mlir VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ -n $version ]] || { echo "FAIL: no project version in $src/CMakeLists.txt" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bitnet-install-test.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
  echo "scratch directory: $work"
else
  trap 'rm -rf "$work"' EXIT
fi
# Nothing may come from the environment the build uses.
unset LD_LIBRARY_PATH PYTHONPATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH

fail() { echo "FAIL: $*" >&2; exit 1; }
start=$SECONDS
step() { echo "== [$((SECONDS - start))s] $*"; }
# expect_contains TEXT NEEDLE WHAT
expect_contains() {
  [[ $1 == *"$2"* ]] || fail "$3: expected '$2' in: $1"
}
# same_npy A B: the two .npy files hold the same array, bit for bit.
same_npy() {
  "$python" - "$1" "$2" <<'EOF' || fail "$1 and $2 differ"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b):
    sys.exit(f"{sys.argv[1]}: {a!r}\n{sys.argv[2]}: {b!r}")
EOF
}
# expect_loads FILE LIBRARY DIR: FILE loads LIBRARY from DIR (no environment).
expect_loads() {
  local found
  found=$(ldd "$1" | sed -n "s/^[[:space:]]*$2 => \(.*\) (0x.*/\1/p")
  [[ -n $found && $(realpath "$(dirname "$found")") == "$(realpath "$3")" ]] ||
    fail "$1 loads $2 from '${found:-nowhere}', not from $3"
}
# check_runpath FILE: prints the RUNPATH of FILE, which must not name the
# build tree or the sources.
check_runpath() {
  local runpath
  runpath=$(readelf -d "$1" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p; s/.*(RPATH).*\[\(.*\)\]/\1/p')
  [[ $runpath != *"$build"* && $runpath != *"$src"* ]] ||
    fail "$1 keeps a build-tree RUNPATH: $runpath"
  echo "$runpath"
}

example="$src/examples/bitlinear.mlir"
input="$src/examples/bitlinear_x.npy"
[[ -x $build/bin/bitnet-compile && -x $build/bin/bitnet-run ]] ||
  fail "$build has no bin/bitnet-compile or bin/bitnet-run: build it first"

step "reference: the build tree compiles and runs $example"
mkdir -p "$work/ref"
"$build/bin/bitnet-compile" "$example" -o "$work/ref/bitlinear.so"
"$build/bin/bitnet-run" "$work/ref/bitlinear.so" --input "x=$input" \
  --output-dir "$work/ref" --quiet
"$python" -c "import numpy as np; np.save('$work/arange.npy', np.arange(16, dtype=np.float32).reshape(2, 8))"
"$build/bin/bitnet-run" "$work/ref/bitlinear.so" --input "x=$work/arange.npy" \
  --output-dir "$work/ref/arange" --quiet
# The result against the numerics contract, computed here in NumPy.
"$python" - "$work/ref/y.npy" "$input" <<'EOF' || fail "the build tree's result breaks the contract"
import sys, numpy as np
y, x = np.load(sys.argv[1]), np.load(sys.argv[2]).astype(np.float32)
w = np.array([[0.9, -0.4, 0.0, 1.2, -1.1, 0.3, 0.05, -0.8],
              [-0.2, 0.7, 0.6, -0.9, 0.0, 0.0, 1.5, 0.1],
              [0.0] * 8,
              [1.0, 1.0, -1.0, -1.0, 0.5, -0.5, 0.25, -0.25]], np.float32)
sw = max(np.abs(w).mean(), 1e-5)
wq = np.clip(np.round(w / sw), -1, 1)
sx = 127 / np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-5)
xq = np.clip(np.round(x * sx), -128, 127)
expected = (xq @ wq.T) * sw / sx
if y.shape != (2, 4) or not np.allclose(y, expected, rtol=1e-5, atol=1e-6):
    sys.exit(f"got {y!r}, expected {expected!r}")
EOF
# What run_model (test/install/consumer) prints for the arange input.
expected_run_model=$("$python" -c "
import numpy as np
y = np.load('$work/ref/arange/y.npy')
print('y:' + ''.join(' %.6g' % v for v in y.ravel()))")
# check_run_model PROGRAM: PROGRAM runs the reference model like bitnet-run.
check_run_model() {
  local out
  out=$("$@" "$work/ref/bitlinear.so") || fail "$* failed: $out"
  expect_contains "$out" "runtime $version" "$1"
  grep -qxF "$expected_run_model" <<<"$out" ||
    fail "$1 printed '$out', expected the line '$expected_run_model'"
}

# ---------------------------------------------------------------------------
step "cmake --install into $work/prefix"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
pythondir=$(sed -n 's/^BITNET_INSTALL_PYTHONDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
docdir=share/doc/bitnet-mlir
for file in \
    bin/bitnet-compile bin/bitnet-opt bin/bitnet-run bin/bitnet-generate bin/bitnet-perplexity bin/bitnet-tokenize \
    "$libdir/libbitnet_rt.so.0" "$libdir/libbitnet_rt.so" "$libdir/libbitnet_rt.a" \
    "$libdir/libBitNetCompiler.a" "$libdir/libMLIRBitNet.a" \
    "$libdir/pkgconfig/bitnet_rt.pc" \
    "$libdir/cmake/BitNetRuntime/BitNetRuntimeConfig.cmake" \
    "$libdir/cmake/BitNetRuntime/BitNetRuntimeConfigVersion.cmake" \
    "$libdir/cmake/BitNetCompiler/BitNetCompilerConfig.cmake" \
    include/bitnet_rt/bitnet_rt.h include/bitnet_rt/model_abi.h \
    include/bitnet/Compiler/Compiler.h include/bitnet/Transforms/Passes.h.inc \
    include/bitnet/Dialect/BitNet/IR/BitNet.h include/bitnet/Dialect/BitNet/IR/BitNetOps.h.inc \
    "$pythondir/bitnet_mlir/__init__.py" \
    "$docdir/README.md" "$docdir/runtime/README.md" "$docdir/examples/bitlinear.mlir" \
    "$docdir/deploy/README.md" "$docdir/deploy/haproxy.cfg"; do
  [[ -e $prefix/$file ]] || fail "cmake --install did not install $file"
done
ls "$prefix/$pythondir"/bitnet_mlir/_native*.so >/dev/null || fail "no native module installed"
grep -q "prefix=$prefix\$" "$prefix/$libdir/pkgconfig/bitnet_rt.pc" ||
  fail "bitnet_rt.pc does not name the prefix $prefix: $(cat "$prefix/$libdir/pkgconfig/bitnet_rt.pc")"

step "the installed tools start with no LD_LIBRARY_PATH"
llvm_libdir=$(sed -n 's/^LLVM_DIR:[A-Z]*=\(.*\)\/cmake\/llvm$/\1/p' "$build/CMakeCache.txt")
for tool in bitnet-run bitnet-generate bitnet-perplexity bitnet-tokenize; do
  expect_contains "$(check_runpath "$prefix/bin/$tool")" '$ORIGIN/' "RUNPATH of $tool"
done
for tool in bitnet-compile bitnet-opt; do
  expect_contains "$(check_runpath "$prefix/bin/$tool")" "${llvm_libdir:-/usr/lib/llvm-22/lib}" "RUNPATH of $tool"
done
for tool in bitnet-run bitnet-generate bitnet-perplexity bitnet-tokenize bitnet-compile bitnet-opt; do
  libs=$(ldd "$prefix/bin/$tool")
  [[ $libs != *"not found"* ]] || fail "$tool misses libraries: $libs"
done
expect_contains "$("$prefix/bin/bitnet-compile" --version)" "$version" "bitnet-compile --version"
expect_contains "$("$prefix/bin/bitnet-opt" --version)" "$version" "bitnet-opt --version"
expect_contains "$("$prefix/bin/bitnet-run" --version)" "$version" "bitnet-run --version"
expect_contains "$("$prefix/bin/bitnet-tokenize" --help 2>&1)" "bitnet-tokenize" "bitnet-tokenize --help"
expect_contains "$("$prefix/bin/bitnet-generate" --help 2>&1)" "bitnet-generate" "bitnet-generate --help"
for tool in bitnet-run bitnet-generate bitnet-perplexity bitnet-tokenize; do
  expect_loads "$prefix/bin/$tool" libbitnet_rt.so.0 "$prefix/$libdir"
done
# bitnet-serve is built only where cpp-httplib and nlohmann::json were found.
if [[ -e $build/bin/bitnet-serve ]]; then
  [[ -e $prefix/bin/bitnet-serve ]] || fail "cmake --install did not install bin/bitnet-serve"
  expect_contains "$(check_runpath "$prefix/bin/bitnet-serve")" '$ORIGIN/' "RUNPATH of bitnet-serve"
  expect_contains "$("$prefix/bin/bitnet-serve" --help 2>&1)" "bitnet-serve" "bitnet-serve --help"
  expect_loads "$prefix/bin/bitnet-serve" libbitnet_rt.so.0 "$prefix/$libdir"
fi
expect_loads "$(ls "$prefix/$pythondir"/bitnet_mlir/_native*.so)" libbitnet_rt.so.0 "$prefix/$libdir"

step "the installed compiler and bitnet-run compile and run the example"
mkdir -p "$work/installed"
"$prefix/bin/bitnet-compile" "$prefix/$docdir/examples/bitlinear.mlir" -o "$work/installed/bitlinear.so"
"$prefix/bin/bitnet-run" "$work/installed/bitlinear.so" \
  --input "x=$prefix/$docdir/examples/bitlinear_x.npy" --output-dir "$work/installed" --quiet
same_npy "$work/ref/y.npy" "$work/installed/y.npy"
expect_contains "$("$prefix/bin/bitnet-opt" "$example")" "bitnet.bitlinear" "the installed bitnet-opt on $example"

step "the installed Python package compiles and runs the example"
(cd "$work" && PYTHONPATH="$prefix/$pythondir" "$python" - "$prefix" "$example" "$input" \
    "$work/installed/py_y.npy" <<'EOF') || fail "the installed Python package failed"
import sys, numpy as np
prefix, example, x, out = sys.argv[1:]
import bitnet_mlir
assert bitnet_mlir.__file__.startswith(prefix), bitnet_mlir.__file__
so = bitnet_mlir.compile(example, out.replace(".npy", ".so"))
np.save(out, bitnet_mlir.load(so).run(np.load(x)))
EOF
same_npy "$work/ref/y.npy" "$work/installed/py_y.npy"

# ---------------------------------------------------------------------------
step "an outside CMake project finds BitNetRuntime and BitNetCompiler"
cmake -S "$src/test/install/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DWITH_COMPILER=ON \
  >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; fail "configuring the consumer failed"; }
grep -q "BitNetRuntime $version from $prefix/$libdir/cmake/BitNetRuntime" "$work/consumer.log" ||
  fail "the consumer did not find BitNetRuntime $version in $prefix: $(cat "$work/consumer.log")"
grep -q "BitNetCompiler $version from $prefix/$libdir/cmake/BitNetCompiler" "$work/consumer.log" ||
  fail "the consumer did not find BitNetCompiler $version in $prefix"
cmake --build "$work/consumer" -j 2 >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log"; fail "building the consumer failed"; }
check_run_model "$work/consumer/run_model"
check_run_model "$work/consumer/run_model_static"
[[ $(readelf -d "$work/consumer/run_model_static") != *libbitnet_rt* ]] ||
  fail "run_model_static links libbitnet_rt.so"
"$work/consumer/compile_model" "$example" "$work/consumer/bitlinear.so" >/dev/null
"$prefix/bin/bitnet-run" "$work/consumer/bitlinear.so" --input "x=$input" \
  --output-dir "$work/consumer/out" --quiet
same_npy "$work/ref/y.npy" "$work/consumer/out/y.npy"

step "the same program built with pkg-config"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
[[ $(pkg-config --modversion bitnet_rt) == "$version" ]] || fail "pkg-config --modversion bitnet_rt"
# shellcheck disable=SC2046 # the flags are words
cc -o "$work/run_model_pc" "$src/test/install/consumer/run_model.c" \
  $(pkg-config --cflags --libs bitnet_rt) \
  -Wl,-rpath,"$(pkg-config --variable=libdir bitnet_rt)"
check_run_model "$work/run_model_pc"
# shellcheck disable=SC2046
cc -o "$work/run_model_pc_static" "$src/test/install/consumer/run_model.c" \
  $(pkg-config --cflags bitnet_rt) "$prefix/$libdir/libbitnet_rt.a" \
  $(pkg-config --static --libs-only-l bitnet_rt | sed 's/-lbitnet_rt//')
check_run_model "$work/run_model_pc_static"
unset PKG_CONFIG_PATH

# ---------------------------------------------------------------------------
step "cpack writes the Debian package"
cpack --config "$build/CPackConfig.cmake" -B "$work/cpack" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/cpack/bitnet-mlir_"$version"-1_*.deb) || fail "no bitnet-mlir_$version-1_*.deb in $work/cpack"
info=$(dpkg-deb --info "$deb")
expect_contains "$info" "Package: bitnet-mlir" "dpkg-deb --info"
expect_contains "$info" "Version: $version-1" "dpkg-deb --info"
expect_contains "$info" "Architecture: $(dpkg --print-architecture)" "dpkg-deb --info"
depends=$(dpkg-deb --field "$deb" Depends)
for dep in libc6 libllvm22 libmlir-22 libcjson1 libpcre2-8-0 gcc; do
  expect_contains "$depends" "$dep" "Depends of $deb"
done

step "the package's contents, extracted into a scratch root, run"
root="$work/root"
dpkg-deb -x "$deb" "$root"
for tool in bitnet-compile bitnet-opt bitnet-run bitnet-generate bitnet-perplexity bitnet-tokenize; do
  [[ -x $root/usr/bin/$tool ]] || fail "the package has no /usr/bin/$tool"
done
grep -qx 'prefix=/usr' "$root/usr/$libdir/pkgconfig/bitnet_rt.pc" ||
  fail "the package's bitnet_rt.pc does not name the prefix /usr"
expect_contains "$("$root/usr/bin/bitnet-compile" --version)" "$version" "packaged bitnet-compile --version"
expect_contains "$("$root/usr/bin/bitnet-run" --version)" "$version" "packaged bitnet-run --version"
expect_loads "$root/usr/bin/bitnet-run" libbitnet_rt.so.0 "$root/usr/$libdir"
mkdir -p "$work/deb"
"$root/usr/bin/bitnet-compile" "$root/usr/share/doc/bitnet-mlir/examples/bitlinear.mlir" \
  -o "$work/deb/bitlinear.so"
"$root/usr/bin/bitnet-run" "$work/deb/bitlinear.so" \
  --input "x=$root/usr/share/doc/bitnet-mlir/examples/bitlinear_x.npy" \
  --output-dir "$work/deb" --quiet
same_npy "$work/ref/y.npy" "$work/deb/y.npy"
(cd "$work" && PYTHONPATH="$root/usr/lib/python3/dist-packages" "$python" -c "
import bitnet_mlir, numpy as np
assert bitnet_mlir.__file__.startswith('$root'), bitnet_mlir.__file__
np.save('$work/deb/py_y.npy', bitnet_mlir.load('$work/deb/bitlinear.so').run(np.load('$input')))") ||
  fail "the packaged Python package failed"
same_npy "$work/ref/y.npy" "$work/deb/py_y.npy"

# ---------------------------------------------------------------------------
step "pip installs python_bindings into a venv (system site packages)"
"$python" -m venv --system-site-packages "$work/venv"
sources_before=$(git -C "$src" status --porcelain --ignored=matching -- python_bindings 2>/dev/null || true)
BITNET_BUILD_DIR="$build" "$work/venv/bin/python" -m pip install --no-build-isolation \
  --no-index --disable-pip-version-check "$src/python_bindings" >"$work/pip.log" 2>&1 ||
  { cat "$work/pip.log"; fail "pip install failed"; }
sources_after=$(git -C "$src" status --porcelain --ignored=matching -- python_bindings 2>/dev/null || true)
[[ $sources_after == "$sources_before" ]] ||
  fail "pip left files in the sources: $(diff <(echo "$sources_before") <(echo "$sources_after"))"
site=$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
native=$(ls "$site"/bitnet_mlir/_native*.so) || fail "the venv has no native module"
check_runpath "$native" >/dev/null
expect_loads "$native" libbitnet_rt.so.0 "$site/bitnet_mlir"
expect_contains "$("$work/venv/bin/python" -m pip show bitnet-mlir)" "Version: $version" "pip show bitnet-mlir"
(cd "$work" && "$work/venv/bin/python" - "$site" "$example" "$input" "$work/venv_y.npy" <<'EOF') ||
import sys, numpy as np
site, example, x, out = sys.argv[1:]
import bitnet_mlir
assert bitnet_mlir.__file__.startswith(site), bitnet_mlir.__file__
so = bitnet_mlir.compile(example, out.replace(".npy", ".so"))
model = bitnet_mlir.load(so)
np.save(out, model.run(np.load(x)))
EOF
  fail "the pip-installed package failed"
same_npy "$work/ref/y.npy" "$work/venv_y.npy"

step "all install paths pass"
