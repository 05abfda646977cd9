# Cortex-M4F (single-precision FPU, hard-float ABI), e.g. STM32F4, nRF52; QEMU mps2-an386.
#   cmake -S . -B build-cortex-m4 -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/cortex-m4.toolchain.cmake \
#         -DTQ_MCU_MODELS=/path/lenet_w4a8.cc
# See toolchains/cortex-m.cmake for what builds, examples/mcu_inference/README.md for running.
set(TQ_CORTEX_M_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(TQ_QEMU_MACHINE mps2-an386 CACHE STRING "qemu-system-arm -M value that runs these programs")
include(${CMAKE_CURRENT_LIST_DIR}/cortex-m.cmake)
