# Loaded after CMake's compiler defaults (CMAKE_USER_MAKE_RULES_OVERRIDE, set in cortex-m.cmake):
# a bare-metal executable is linked at fixed addresses, so no -fPIC / -fPIE (the top level turns
# CMAKE_POSITION_INDEPENDENT_CODE on for the hosts), and Release is -O2 (GCC's -O3 mostly grows
# code on M4/M7 where there is nothing to vectorize).
set(CMAKE_C_COMPILE_OPTIONS_PIC "")
set(CMAKE_CXX_COMPILE_OPTIONS_PIC "")
set(CMAKE_C_COMPILE_OPTIONS_PIE "")
set(CMAKE_CXX_COMPILE_OPTIONS_PIE "")
set(CMAKE_C_FLAGS_RELEASE_INIT "-O2 -DNDEBUG")
set(CMAKE_CXX_FLAGS_RELEASE_INIT "-O2 -DNDEBUG")
