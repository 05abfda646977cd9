# 32-bit ARM Linux, hard float (Debian armhf: ARMv7-A, VFPv3-D16, Thumb-2; NEON is picked at run
# time by XNNPACK where the CPU has it). Same options as the host; the ONNX importer and tq build
# too, but CI runs the runtime, loader and integer-kernel suites here (see .ci/run).
#   bash toolchains/make-sysroot.sh armhf
#   cmake -S . -B build-armhf -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.toolchain.cmake
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(TQ_TRIPLE arm-linux-gnueabihf)
set(TQ_QEMU_NAME qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
