# 64-bit ARM Linux (Raspberry Pi 4/5 OS 64-bit, Jetson, Graviton, phones' Linux userland).
# Everything builds: runtime with XNNPACK, loader, quant/, the ONNX importer, tq, the tests.
#   bash toolchains/make-sysroot.sh aarch64
#   cmake -S . -B build-aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.toolchain.cmake
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(TQ_TRIPLE aarch64-linux-gnu)
set(TQ_QEMU_NAME qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
