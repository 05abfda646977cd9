# Cortex-M7 with the double-precision FPU (hard-float ABI), e.g. STM32F7/H7, i.MX RT; QEMU mps2-an500.
#   cmake -S . -B build-cortex-m7 -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/cortex-m7.toolchain.cmake \
#         -DTQ_MCU_MODELS=/path/lenet_w4a8.cc
# See toolchains/cortex-m.cmake for what builds, examples/mcu_inference/README.md for running.
set(TQ_CORTEX_M_FLAGS "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16")
set(TQ_QEMU_MACHINE mps2-an500 CACHE STRING "qemu-system-arm -M value that runs these programs")
include(${CMAKE_CURRENT_LIST_DIR}/cortex-m.cmake)
