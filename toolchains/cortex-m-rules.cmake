# Loaded after CMake's compiler defaults (CMAKE_USER_MAKE_RULES_OVERRIDE, set in cortex-m.cmake):
# a bare-metal executable is linked at fixed addresses, so no -fPIC / -fPIE (the top level turns
# CMAKE_POSITION_INDEPENDENT_CODE on for the hosts), and Release is -Os: flash is the scarce
# resource; the Cortex-M kernels, where the time goes, are built -O2 (runtime/CMakeLists.txt).
set(CMAKE_C_COMPILE_OPTIONS_PIC "")
set(CMAKE_CXX_COMPILE_OPTIONS_PIC "")
set(CMAKE_C_COMPILE_OPTIONS_PIE "")
set(CMAKE_CXX_COMPILE_OPTIONS_PIE "")
set(CMAKE_C_FLAGS_RELEASE_INIT "-Os -DNDEBUG")
set(CMAKE_CXX_FLAGS_RELEASE_INIT "-Os -DNDEBUG")
