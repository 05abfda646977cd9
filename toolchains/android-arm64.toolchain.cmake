# Android arm64-v8a through the NDK's own toolchain file (not tested here: no NDK on our CI).
#   cmake -S . -B build-android -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/android-arm64.toolchain.cmake \
#         -DANDROID_NDK=$HOME/Android/Sdk/ndk/26.1.10909125 -DANDROID_PLATFORM=android-26 \
#         -DCMAKE_FIND_ROOT_PATH=/path/to/arm64-prefix   # XNNPACK, pthreadpool, cpuinfo built for Android
# The app links tq_runtime + tq_schema (+ tq_quant for on-device recalibration). The ONNX importer
# and tq stay on the host; tests need a device or emulator (adb push build-android/bin/tq_tests).
if(NOT ANDROID_NDK AND DEFINED ENV{ANDROID_NDK})
  set(ANDROID_NDK $ENV{ANDROID_NDK})
endif()
if(NOT ANDROID_NDK OR NOT EXISTS "${ANDROID_NDK}/build/cmake/android.toolchain.cmake")
  message(FATAL_ERROR "Set ANDROID_NDK (cache or environment) to an NDK (r23 or newer).")
endif()
set(ANDROID_ABI arm64-v8a CACHE STRING "")
if(NOT ANDROID_PLATFORM)
  set(ANDROID_PLATFORM android-26)
endif()
set(ANDROID_STL c++_static CACHE STRING "")
include("${ANDROID_NDK}/build/cmake/android.toolchain.cmake")
set(TQ_WITH_ONNX OFF CACHE BOOL "")
set(TQ_BUILD_TOOLS OFF CACHE BOOL "")
set(TQ_BUILD_BENCH OFF CACHE BOOL "")
